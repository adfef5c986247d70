"""Commit headers that go-git (Flux's source-controller) reads otherwise than git; --cache-dir clones."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from trustgate.presync.git import GitError, header_problem, open_remote

TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the empty tree
OTHER = "a" * 40
IDENT = "A <a@example.com> 1767225600 +0000"


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="A",
        GIT_AUTHOR_EMAIL="a@example.com",
        GIT_COMMITTER_NAME="A",
        GIT_COMMITTER_EMAIL="a@example.com",
    )
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, check=True, env=env, timeout=60
    )
    return done.stdout.decode().strip()


def test_commits_git_writes_read_the_same(tmp_path: Path) -> None:
    """Plain, merge, SSH-signed commits and one with an encoding and a message full of header words."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=60)
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "side")
    git(repo, "checkout", "-q", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "side")
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"]
    git(repo, *signing, "commit", "-q", "--allow-empty", "-S", "-m", "signed\n\ntree x\nparent y\n author z")
    git(repo, "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "--allow-empty", "-m", "latin")
    shas = git(repo, "rev-list", "--all").split()
    assert len(shas) == 6
    for sha in shas:
        raw = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "commit", sha], capture_output=True, check=True, timeout=60
        ).stdout
        assert header_problem(raw) == "", raw


@pytest.mark.parametrize(
    ("header", "found"),
    [
        (f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\ntree {OTHER}\n", "line 4 "),
        (f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\nx-note a\n tree {OTHER}\n", "line 5 "),
        (f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\nx-note a\n\u00a0\ttree {OTHER}\n", "`tree`"),
        (f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\nparent {OTHER}\n", "`parent`"),
        (f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\nauthor {IDENT}\n", "`author`"),
        (f"tree {TREE}\nparent {OTHER}\ncommitter {IDENT}\n", "not laid out"),
        (f"parent {OTHER}\ntree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\n", "not laid out"),
        (f"tree {TREE}\nparent {OTHER}\nauthor {IDENT}\nparent {OTHER}\ncommitter {IDENT}\n", "not laid out"),
    ],
)
def test_a_header_go_git_reads_otherwise_is_named(header: str, found: str) -> None:
    why = header_problem(f"{header}\nmessage\n".encode())
    assert found in why, why


def test_a_signature_line_that_reads_as_a_header_word_is_the_signatures() -> None:
    """go-git takes the continuation lines of `gpgsig` for the signature, whatever they read as."""
    header = f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\ngpgsig -----BEGIN SSH SIGNATURE-----\n tree\n"
    assert header_problem(f"{header}\nmessage\n".encode()) == ""
    assert "line 7" in header_problem(f"{header}x\n tree {OTHER}\n\nmessage\n".encode())


def test_a_merged_signed_tag_reads_the_same(tmp_path: Path) -> None:
    """`git merge` of a signed tag writes its object into a `mergetag` header: the tag's message, lines
    reading `tree ...` or `author ...` included, follows a continuation line ` ` at which go-git's
    header ends (it reads the rest as the message), so go-git reads the tree and parents git does."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=60)
    repo = tmp_path / "repo"
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"]
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "side")
    message = "Release 1\n\ntree shaking of the bundle\nparent chart 2.0\nauthor notes\ncommitter list"
    git(repo, *signing, "tag", "-s", "-m", message, "v1")
    git(repo, "checkout", "-q", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    git(repo, *signing, "merge", "-q", "--no-ff", "-S", "-m", "merge v1", "v1")
    raw = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "commit", "HEAD"], capture_output=True, check=True, timeout=60
    ).stdout
    assert b"\nmergetag object " in raw and b"\n tree shaking" in raw and b"\ngpgsig " in raw, raw
    assert header_problem(raw) == "", raw


@pytest.mark.parametrize(
    ("continuation", "found"),
    [
        (" \n tree {other}\n", ""),  # go-git's header ends at ` `
        ("\u3000\n tree {other}\n", ""),  # and at any line Go trims to nothing
        ("\x1c\n tree {other}\n", "line 6 "),  # which \x1c is not, as Python would have it
        (" gpgsig x\n tree {other}\n", ""),  # a `gpgsig` line, trimmed, starts a signature in go-git
        (" x\n tree {other}\n", "line 6 "),
    ],
    ids=["blank", "unicode-blank", "x1c", "gpgsig", "text"],
)
def test_where_go_git_ends_the_header(continuation: str, found: str) -> None:
    header = f"tree {TREE}\nauthor {IDENT}\ncommitter {IDENT}\nmergetag object {OTHER}\n"
    why = header_problem(f"{header}{continuation.format(other=OTHER)}\nmessage\n".encode())
    assert found in why if found else why == "", why


def _remote(tmp_path: Path) -> str:
    """A bare repository with one commit on main; its file:// URL."""
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git(work, "commit", "-q", "--allow-empty", "-m", "first")
    git(tmp_path, "clone", "-q", "--bare", str(work), str(tmp_path / "remote.git"))
    return f"file://{tmp_path / 'remote.git'}"


def test_a_clone_left_without_its_remote_is_mended(tmp_path: Path) -> None:
    """A run stopped between `git init` and `git remote add` (killed, timed out) left a clone that
    every later run failed on (`No such remote 'origin'`, exit 3) until someone removed it."""
    url, cache = _remote(tmp_path), tmp_path / "cache"
    first = open_remote(url, cache, ["refs/heads/main"], timeout=60)
    git(first.directory, "remote", "remove", "origin")
    again = open_remote(url, cache, ["refs/heads/main"], timeout=60)
    assert again.directory == first.directory
    assert again.resolve("refs/heads/main") == git(tmp_path / "work", "rev-parse", "HEAD")


def test_first_runs_at_once_share_one_clone(tmp_path: Path) -> None:
    """Runs sharing --cache-dir take turns at a clone: two first runs at once both added `origin`,
    and the second failed (exit 3)."""
    url, cache = _remote(tmp_path), tmp_path / "cache"
    start = threading.Barrier(6)
    failed: list[str] = []

    def run() -> None:
        start.wait()
        try:
            open_remote(url, cache, ["refs/heads/main"], timeout=60)
        except GitError as e:
            failed.append(e.diagnostics())

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
