"""Real git repositories in temp dirs, with commits signed by test-only SSH and GPG keys.

Keys are generated per test session (`ssh-keygen -t ed25519`, `gpg --quick-gen-key`
in a private GNUPGHOME, no passphrase); nothing here reads the user's git, ssh or
gpg configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support.components import missing

TIMEOUT = 60.0


@dataclass(frozen=True)
class SshKey:
    principal: str
    private: Path
    public: str  # "ssh-ed25519 AAAA... comment"


@dataclass(frozen=True)
class GpgKey:
    email: str
    home: Path  # GNUPGHOME holding the secret key
    public_file: Path  # armored public key
    fingerprint: str = ""  # the primary key's (what an approver rule names)


def ssh_key(directory: Path, principal: str) -> SshKey:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / principal.split("@")[0]
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(private)],
        check=True,
        timeout=TIMEOUT,
    )
    return SshKey(principal, private, Path(f"{private}.pub").read_text().strip())


def gpg_key(directory: Path, name: str, email: str) -> GpgKey:
    if shutil.which("gpg") is None:
        missing("gpg", "run `make dev`: scripts/install-system-deps.sh installs gnupg")
    home = directory / f"gnupg-{email.split('@')[0]}"
    home.mkdir(parents=True, mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", f"{name} <{email}>", "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    public = directory / f"{email.split('@')[0]}.asc"
    exported = subprocess.run(
        [*gpg, "--armor", "--export", email], check=True, capture_output=True, timeout=TIMEOUT
    )
    public.write_bytes(exported.stdout)
    listed = subprocess.run(
        [*gpg, "--with-colons", "--list-keys", email], check=True, capture_output=True, timeout=TIMEOUT
    )
    fingerprint = next(
        line.split(":")[9] for line in listed.stdout.decode().splitlines() if line.startswith("fpr:")
    )
    return GpgKey(email, home, public, fingerprint)


def stop_gpg_agent(key: GpgKey) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(key.home), "--kill", "gpg-agent"],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def allowed_signers(path: Path, *keys: SshKey) -> Path:
    path.write_text("".join(f"{k.principal} {k.public}\n" for k in keys))
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GNUPGHOME"))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
    )
    return env


@dataclass
class Repo:
    """A work tree; `commit` writes the staged changes as one commit, signed or not."""

    path: Path
    home: Path
    author: tuple[str, str] = ("Alice", "alice@example.com")
    counter: int = field(default=0)

    @classmethod
    def create(cls, path: Path, *, branch: str = "main") -> Repo:
        path.mkdir(parents=True, exist_ok=True)
        home = path.parent / (path.name + "-home")
        home.mkdir(exist_ok=True)
        repo = cls(path, home)
        repo.git("init", "-q", "-b", branch)
        return repo

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**_env(self.home), **(env or {})},
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def write(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        self.git("add", "--", name)

    def remove(self, name: str) -> None:
        self.git("rm", "-q", "--", name)

    def commit(
        self,
        message: str,
        *,
        ssh: SshKey | None = None,
        gpg: GpgKey | None = None,
        author: tuple[str, str] | None = None,
        committer: tuple[str, str] | None = None,
    ) -> str:
        """Commit what is staged (empty allowed); sign with `ssh` or `gpg` when given; return the sha."""
        self.counter += 1
        name, email = author or self.author
        cname, cemail = committer or (name, email)
        args = ["-c", f"user.name={cname}", "-c", f"user.email={cemail}"]
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
        env["GIT_COMMITTER_DATE"] = env["GIT_AUTHOR_DATE"] = (
            f"2026-01-01T00:{self.counter // 60:02d}:{self.counter % 60:02d}Z"
        )
        sign: list[str] = []
        if ssh is not None:
            args += ["-c", "gpg.format=ssh", "-c", f"user.signingkey={ssh.private}"]
            sign = ["-S"]
        elif gpg is not None:
            args += ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={gpg.email}"]
            env["GNUPGHOME"] = str(gpg.home)
            sign = ["-S"]
        self.git(*args, "commit", "-q", "--allow-empty", *sign, "-m", message, env=env)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)

    def ref(self, name: str) -> str | None:
        done = subprocess.run(
            ["git", "-C", str(self.path), "rev-parse", "--verify", "--quiet", name],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=_env(self.home),
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else None


def bare_remote(path: Path, source: Repo, *refs: str) -> str:
    """A bare repository at `path` holding `refs` of `source`; returns its file:// URL."""
    subprocess.run(
        ["git", "init", "-q", "--bare", str(path)], check=True, timeout=TIMEOUT, env=_env(source.home)
    )
    push_to(source, f"file://{path}", *refs)
    return f"file://{path}"


def push_to(source: Repo, url: str, *refspecs: str, force: bool = False) -> None:
    source.git("push", "-q", *(["--force"] if force else []), url, *refspecs)


def ref_in(path: Path, name: str) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--verify", "--quiet", name],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None
