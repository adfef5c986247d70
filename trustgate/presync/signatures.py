"""Who signed, authored and committed each commit, judged against the `commits` rules.

Owns: the keyring git verifies with (a private GNUPGHOME holding only the
configured GPG public keys, the configured SSH allowed_signers and revoked signers files), the
`git -c` settings that make git use exactly those, and the findings for a
commit: unsigned, not signed by an allowed signer, author or committer not
allowed. Leaves out: running git (`git.py`) and approvals of deletions
(`changes.py`, which asks `signer_identities` here).

git does the cryptography (`%G?` of `git log`, what `git verify-commit`
checks): for SSH it calls `ssh-keygen -Y verify` with the allowed_signers file
(G only when a principal there holds the key, at the commit's time); for GPG
it calls `gpg` against the private keyring, where every key is one the config
names, so a good signature (G, or U: good but the key carries no ownertrust)
is a good signature by an allowed signer. What git reports is then vetted
(`Keyring.vet`): a GPG-kind signature counts only when its key's fingerprint
is one of the keyring's (an X.509 signature, which git checks with `gpgsm`
against its own trust list, is not one; git's `gpgsm` is also switched off).

The commit time is the committer's to choose, so git's `ssh-keygen` checks
keys and certificates at the present moment (a wrapper replaces the
`verify-time` git passes): a retired key or an expired certificate must not
sign a backdated commit. Identities an approver rule may match
are those the operator bound to a key: an SSH principal (the allowed_signers
file names it), a GPG key's fingerprint or id; never a GPG user id, which the
key's holder writes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import fnmatch
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from trustgate.config import CommitSettings
from trustgate.errors import ConfigError
from trustgate.model import Finding, Severity
from trustgate.presync.git import Commit

_EMAIL = re.compile(r"<([^<>]+)>")
_HEX_ID = re.compile(r"[0-9A-Fa-f*?]{16,40}")  # a GPG key id or fingerprint (globs allowed)
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
_KRL_MAGIC = b"SSHKRL\n\0"  # how an OpenSSH key revocation list starts (PROTOCOL.krl)
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
        self.primaries: dict[str, str] = {}  # fingerprint of a key or subkey -> its primary key's
        try:
            signers = _named_file(settings.allowed_signers, "SSH allowed_signers", "commits.allowedSigners")
            self.allowed_signers = signers or self._home / "allowed_signers"
            if signers is None:
                self.allowed_signers.write_text("")  # no SSH signer is allowed
            revoked = _named_file(settings.revoked_signers, "SSH revoked signers", "commits.revokedSigners")
            self.revoked_signers = str(revoked.resolve()) if revoked is not None else ""
            self.check()
            self.ssh_program = self._home / "ssh-keygen-now"
            self.ssh_program.write_text(
                _SSH_AT_NOW.format(
                    ssh_keygen=shlex.quote(shutil.which("ssh-keygen") or "ssh-keygen"),
                    revoked=shlex.quote(self.revoked_signers),
                )
            )
            self.ssh_program.chmod(0o700)
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
        primary = ""
        for line in listed.stdout.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if fields[0] == "pub":
                primary = ""  # the next fpr is the primary key's
            if fields[0] == "fpr" and len(fields) > 9:
                fingerprint = fields[9].upper()
                primary = primary or fingerprint
                self.fingerprints.add(fingerprint)
                self.primaries[fingerprint] = primary
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

    def check(self) -> None:
        """Refuse to go on with a revoked signers file that cannot be used now: it is read at every
        run, and ssh-keygen takes every SSH signature for a bad one (`B`) while it cannot read it or
        a line of it is no public key, a refusal that would name neither the file nor the line.

        Raises:
            ConfigError: commits.revokedSigners cannot be read, or a line of it (not a KRL) is no
                public key.
        """
        if not self.revoked_signers:
            return
        try:
            data = Path(self.revoked_signers).read_bytes()
        except OSError as e:
            raise ConfigError(
                f"the SSH revoked signers file cannot be read ({e.strerror}): no SSH signature can be "
                "checked",
                where=self.revoked_signers,
                hint="restore commits.revokedSigners (an empty file revokes nothing)",
            ) from e
        if data.startswith(_KRL_MAGIC):
            return
        for number, line in enumerate(data.split(b"\n"), start=1):
            text = line.lstrip(b" \t")
            if text and not text.startswith(b"#") and not _public_key(text):
                raise ConfigError(
                    f"line {number} of the SSH revoked signers file is no public key: no SSH signature "
                    "can be checked",
                    where=self.revoked_signers,
                    hint="list public keys (`ssh-ed25519 AAAA...`) one a line, or give a KRL (ssh-keygen -k)",
                )

    @property
    def git_config(self) -> dict[str, str]:
        """`git -c` settings: verify with these signers and programs only, whatever the repository says."""
        return {
            "gpg.program": "gpg",
            "gpg.ssh.program": str(self.ssh_program),
            "gpg.ssh.allowedSignersFile": str(self.allowed_signers),
            # git leaves out a revocation file it does not find (a warning): the program refuses then.
            "gpg.ssh.revocationFile": self.revoked_signers,
            # X.509 (gpgsm) trusts what its own trust list says, and a repository may name any
            # program: no X.509 signature is checked (`vet` refuses them anyway).
            "gpg.x509.program": "false",
            "log.showSignature": "false",
            "core.hooksPath": "/dev/null",  # the repository's hooks must not run (reference-transaction)
            "core.fsmonitor": "false",
        }

    def unbound_approvers(self, approvers: Sequence[str]) -> list[str]:
        """The approver patterns that can match nothing: no SSH principal of allowed_signers, and not
        a GPG fingerprint or key id (an e-mail a GPG key's user id carries names nobody)."""
        principals: set[str] = set()
        for line in self.allowed_signers.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                principals.update(p.strip('"') for p in line.split()[0].split(","))
        return [
            pattern
            for pattern in approvers
            if not _HEX_ID.fullmatch(pattern)
            and not any(fnmatch.fnmatchcase(p.lower(), pattern.lower()) for p in principals)
        ]

    def vet(self, commits: Sequence[Commit]) -> list[Commit]:
        """The commits with each GPG-kind signature that is not by a keyring key marked `E`.

        git reports a good X.509 signature (checked by `gpgsm` against its own trust list), or one
        by a key some other keyring holds, with the same letters as one by a configured key.
        """
        out = []
        for commit in commits:
            sig = commit.signature
            if sig.kind == "gpg":
                fingerprint = sig.fingerprint.upper()
                if fingerprint in self.fingerprints:
                    sig = dataclasses.replace(sig, primary=self.primaries.get(fingerprint, ""))
                elif sig.status in _GOOD_GPG:
                    sig = dataclasses.replace(sig, status="E")
                commit = dataclasses.replace(commit, signature=sig)
            out.append(commit)
        return out

    @property
    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self._home)}

    def close(self) -> None:
        # Imports run with --no-autostart and verification needs no agent: no gpg-agent to stop.
        shutil.rmtree(self._home, ignore_errors=True)


def _public_key(line: bytes) -> bool:
    """Whether `line` reads as an OpenSSH public key, `TYPE BASE64 [COMMENT]`, the blob naming TYPE."""
    parts = line.split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) > 1 else b""
    except binascii.Error:
        return False
    size = int.from_bytes(blob[:4], "big")
    return len(blob) > 4 + size and blob[4 : 4 + size] == parts[0]


def good_signature(commit: Commit) -> bool:
    """Whether git verified the commit's signature as one by an allowed signer."""
    sig = commit.signature
    if sig.kind == "ssh":
        return sig.status in _GOOD_SSH
    if sig.kind == "gpg":
        return sig.status in _GOOD_GPG
    return False


def signer_identities(commit: Commit) -> list[str]:
    """The names an approver rule may match: those the operator bound to the key.

    SSH: the principal the allowed_signers file gives the key (and the e-mail in it). GPG: the
    key id, its fingerprint and its primary key's, not the user id: the key's holder writes that
    (an allowed signer could give their key an approver's e-mail).
    """
    if not good_signature(commit):
        return []
    sig = commit.signature
    if sig.kind == "gpg":
        return list(dict.fromkeys(x for x in (sig.key, sig.fingerprint, sig.primary) if x))
    out = [sig.signer] if sig.signer else []
    m = _EMAIL.search(sig.signer)
    if m:
        out.append(m.group(1))
    return out


# git asks ssh-keygen to check a key's validity (`valid-before`, a certificate's validity) at the
# commit's time, which whoever commits writes: a retired key or an expired certificate would sign a
# backdated commit. This wrapper has it checked at the present moment instead.
_SSH_AT_NOW = """#!/bin/sh
# trustgate: check SSH keys and certificates at the present moment, not the time a commit claims
revoked={revoked}
if [ -n "$revoked" ] && [ ! -r "$revoked" ]; then
  echo "trustgate: the revoked signers file $revoked cannot be read" >&2
  exit 1
fi
now=$(date -u +%Y%m%d%H%M%S)Z
for a do
  shift
  case $a in -Overify-time=*) a="-Overify-time=$now";; esac
  set -- "$@" "$a"
done
exec {ssh_keygen} "$@"
"""


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
            words = _STATUS_WORDS.get(sig.status, "a signature git rejects")
            if sig.status == "B" and settings.revoked_signers is not None:
                # ssh-keygen says no more of a key commits.revokedSigners revokes than of an altered commit.
                words = "a bad signature (the commit or its signature was altered, or its SSH key is revoked)"
            who = f" (key {sig.key}{', ' + sig.signer if sig.signer else ''})" if sig.key else ""
            out.append(
                _finding(
                    "commit-signature",
                    f"commit {commit.sha[:12]} carries {words}{who}",
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


def _named_file(path: Path | None, what: str, setting: str) -> Path | None:
    """`path`, a file the configuration names under `setting`; a `ConfigError` when it does not exist."""
    if path is not None and not path.is_file():
        raise ConfigError(
            f"the {what} file does not exist", where=str(path), hint=f"fix {setting} in trustgate.yaml"
        )
    return path
