"""Who signed, authored and committed each commit, judged against the `commits` rules.

Owns: the keyring git verifies with (a private GNUPGHOME holding only the
configured GPG public keys, the configured SSH allowed_signers file), the
`git -c` settings that make git use exactly those, and the findings for a
commit: unsigned, not signed by an allowed signer, author or committer not
allowed. Leaves out: running git (`git.py`) and approvals of deletions
(`changes.py`, which asks `signer_identities` here).

git does the cryptography (`%G?` of `git log`, what `git verify-commit`
checks): for SSH it calls `ssh-keygen -Y verify` with the allowed_signers file
(G only when a principal there holds the key, at the commit's time); for GPG
it calls `gpg` against the private keyring, where every key is one the config
names, so a good signature (G, or U: good but the key carries no ownertrust)
is a good signature by an allowed signer.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from trustgate.config import CommitSettings
from trustgate.errors import ConfigError
from trustgate.model import Finding, Severity
from trustgate.presync.git import Commit

_EMAIL = re.compile(r"<([^<>]+)>")
_GOOD_SSH = {"G"}
_GOOD_GPG = {"G", "U"}  # U: a good signature by a key of the private keyring that has no ownertrust
_STATUS_WORDS = {
    "B": "a bad signature (the commit or its signature was altered)",
    "X": "a good signature that has expired",
    "Y": "a good signature by an expired key",
    "R": "a good signature by a revoked key",
    "E": "a signature by a key that is not an allowed signer",
    "U": "a signature by a key that is not an allowed signer",
}
GPG_TIMEOUT_SECONDS = 30.0  # seconds to import the configured keys


class Keyring:
    """The signers the config allows, set up for git to verify against.

    Build it once per configuration (it imports the GPG keys), then pass
    `git_config` and `env` to every git command that reads signatures.
    Call `close` to remove the private GNUPGHOME.

    Raises:
        ConfigError: a key file or the allowed_signers file is missing or holds no key.
    """

    def __init__(self, settings: CommitSettings) -> None:
        self.settings = settings
        self._home = Path(tempfile.mkdtemp(prefix="trustgate-keyring-"))
        self._home.chmod(0o700)
        self.fingerprints: set[str] = set()
        try:
            signers = settings.allowed_signers
            if signers is not None and not signers.is_file():
                raise ConfigError(
                    "the SSH allowed_signers file does not exist",
                    where=str(signers),
                    hint="fix commits.allowedSigners in trustgate.yaml",
                )
            self.allowed_signers = signers or self._home / "allowed_signers"
            if signers is None:
                self.allowed_signers.write_text("")  # no SSH signer is allowed
            for key in settings.gpg_keys:
                self._import(key)
        except BaseException:
            self.close()
            raise

    def _import(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError("the GPG key file does not exist", where=str(path), hint="fix commits.gpgKeys")
        gpg = shutil.which("gpg")
        if gpg is None:
            raise ConfigError(
                "commits.gpgKeys needs gpg, which is not installed",
                hint="install gnupg (apt-get install gnupg)",
            )
        before = set(self.fingerprints)
        done = subprocess.run(
            [
                gpg,
                "--homedir",
                str(self._home),
                "--batch",
                "--quiet",
                "--no-autostart",
                "--import",
                str(path),
            ],
            capture_output=True,
            timeout=GPG_TIMEOUT_SECONDS,
            check=False,
        )
        listed = subprocess.run(
            [gpg, "--homedir", str(self._home), "--batch", "--no-autostart", "--with-colons", "--list-keys"],
            capture_output=True,
            timeout=GPG_TIMEOUT_SECONDS,
            check=False,
        )
        for line in listed.stdout.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if fields[0] == "fpr" and len(fields) > 9:
                self.fingerprints.add(fields[9].upper())
        if done.returncode != 0 and self.fingerprints == before:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ConfigError(
                "cannot import the GPG key: " + (message[-1] if message else f"gpg exit {done.returncode}"),
                where=str(path),
                hint="export it with `gpg --export --armor KEYID`",
            )
        if self.fingerprints == before:
            raise ConfigError(
                "the file holds no new OpenPGP public key", where=str(path), hint="fix commits.gpgKeys"
            )

    @property
    def git_config(self) -> dict[str, str]:
        """`git -c` settings: verify with these signers and programs only, whatever the repository says."""
        return {
            "gpg.program": "gpg",
            "gpg.ssh.program": "ssh-keygen",
            "gpg.ssh.allowedSignersFile": str(self.allowed_signers),
            "gpg.ssh.revocationFile": "",
            "log.showSignature": "false",
        }

    @property
    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self._home)}

    def close(self) -> None:
        # Imports run with --no-autostart and verification needs no agent: no gpg-agent to stop.
        shutil.rmtree(self._home, ignore_errors=True)


def good_signature(commit: Commit) -> bool:
    """Whether git verified the commit's signature as one by an allowed signer."""
    sig = commit.signature
    if sig.kind == "ssh":
        return sig.status in _GOOD_SSH
    if sig.kind == "gpg":
        return sig.status in _GOOD_GPG
    return False


def signer_identities(commit: Commit) -> list[str]:
    """The names an approver rule may match: SSH principal; GPG user id, its e-mail, key id, fingerprint."""
    if not good_signature(commit):
        return []
    sig = commit.signature
    out = [sig.signer] if sig.signer else []
    m = _EMAIL.search(sig.signer)
    if m:
        out.append(m.group(1))
    out += [x for x in (sig.key, sig.fingerprint) if x]
    return out


def signer_record(commit: Commit) -> dict[str, str] | None:
    """The signer as the decision record keeps it (`actor.git.signer`)."""
    sig = commit.signature
    if sig.status == "N":
        return None
    out = {"status": sig.status, "identity": sig.signer, "key": sig.key, "format": sig.kind}
    if sig.fingerprint:
        out["fingerprint"] = sig.fingerprint
    out["allowed"] = "true" if good_signature(commit) else "false"
    return out


def commit_findings(commit: Commit, settings: CommitSettings, severity: Severity) -> list[Finding]:
    """What is wrong with one commit under the `commits` rules (empty: nothing)."""
    out: list[Finding] = []
    sig = commit.signature
    meta = {"commit": commit.sha, "author": commit.author_email, "committer": commit.committer_email}
    if settings.require_signatures:
        if sig.status == "N":
            out.append(
                _finding(
                    "commit-unsigned",
                    f"commit {commit.sha[:12]} ({commit.subject!r}) is not signed",
                    "sign commits (git commit -S; gpg.format=ssh for SSH keys) and re-push the branch",
                    severity,
                    meta,
                )
            )
        elif not good_signature(commit):
            who = f" (key {sig.key}{', ' + sig.signer if sig.signer else ''})" if sig.key else ""
            out.append(
                _finding(
                    "commit-signature",
                    f"commit {commit.sha[:12]} carries "
                    + _STATUS_WORDS.get(sig.status, "a signature git rejects")
                    + who,
                    "have an allowed signer re-sign it, "
                    "or add the key to commits.allowedSigners / commits.gpgKeys",
                    severity,
                    {**meta, "status": sig.status, "key": sig.key},
                )
            )
    for role, email, patterns in (
        ("author", commit.author_email, settings.authors),
        ("committer", commit.committer_email, settings.committers),
    ):
        if patterns and not any(fnmatch.fnmatchcase(email.lower(), p.lower()) for p in patterns):
            out.append(
                _finding(
                    f"commit-{role}",
                    f"commit {commit.sha[:12]}: {role} {email!r} is not allowed ({', '.join(patterns)})",
                    f"commit as an allowed {role}, or extend commits.{role}s",
                    severity,
                    meta,
                )
            )
    return out


def _finding(rule: str, message: str, fix: str, severity: Severity, meta: dict[str, str]) -> Finding:
    return Finding(
        rule=rule,
        severity=severity,
        message=message,
        source="presync",
        fix=fix,
        policy="commits",
        metadata=meta,
    )
