"""Publishing signed checkpoints where the database's writers cannot rewrite them.

Owns: the `Publisher` protocol (publish one signed checkpoint, read back the
latest one), publishing to a directory (`DirectoryPublisher`: `checkpoint`
replaced atomically, plus `checkpoint.<size>` per tree size, never
overwritten) and to a git ref of another repository (`GitPublisher`: one
commit per checkpoint, made with git plumbing), and reading every checkpoint
of a published directory (`directory_checkpoints`), and a witness's state
directory (`WitnessState`: the last checkpoint cosigned per log, read and
replaced under a lock). Leaves out: signing, and
deciding whether a checkpoint may be signed (`log.py` checks the log against
`latest()` first). See docs/adr/0009.

Every failure is a `PublishError` naming the directory or repository; the
caller reports and counts it, and never loses a decision over it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trustgate.decisions.note import NoteError, TreeHead, split_note
from trustgate.errors import DecisionLogError

LATEST = "checkpoint"  # the file (and the path in the git tree) holding the newest checkpoint
GIT_TIMEOUT_SECONDS = 30.0  # seconds per git command; a push to a remote is the slow one
_NUMBERED = re.compile(r"^checkpoint\.(0|[1-9][0-9]*)$")
_ZERO = "0" * 40
_PUSH_ATTEMPTS = 3  # another writer may push between our fetch and our push


class PublishError(DecisionLogError):
    """A checkpoint could not be published or the published one read (operations must act)."""


class Publisher(Protocol):
    """Somewhere checkpoints are published: `where` names it in messages."""

    @property
    def where(self) -> str: ...

    def latest(self) -> str | None:
        """The newest published checkpoint (a signed note), None when none is yet.

        Raises:
            PublishError: it cannot be read.
        """

    def publish(self, note: str, size: int) -> None:
        """Publish a signed checkpoint of `size` records.

        Raises:
            PublishError: it could not be published.
        """


def _size_of(note: str) -> int | None:
    try:
        return TreeHead.parse(split_note(note)[0]).size
    except NoteError:
        return None


# -- a directory ------------------------------------------------------------------


@dataclass(slots=True)
class DirectoryPublisher:
    """Checkpoints in a directory: `checkpoint` (the newest) and `checkpoint.<size>` (each one kept).

    `checkpoint` only moves forward: a writer that signed a smaller tree
    than the one already there adds its numbered copy and leaves it. Writers
    on one machine take a lock (`.lock`, flock) while publishing.
    """

    directory: Path

    @property
    def where(self) -> str:
        return str(self.directory)

    def latest(self) -> str | None:
        path = self.directory / LATEST
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise PublishError(
                f"cannot read the published checkpoint: {getattr(e, 'strerror', None) or e}", where=str(path)
            ) from e

    def publish(self, note: str, size: int) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._locked():
                self._publish(note, size)
        except OSError as e:
            raise PublishError(
                f"cannot publish the checkpoint of {size} records: {e.strerror or e}",
                where=str(e.filename or self.directory),
                hint="the directory must exist or be creatable, and be writable by trustgate",
            ) from e

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _publish(self, note: str, size: int) -> None:
        data = note.encode()
        numbered = self.directory / f"checkpoint.{size}"
        temp = self._write_temp(data)
        try:
            try:
                os.link(temp, numbered)  # never replaces: fails when the name exists
            except FileExistsError:
                if numbered.read_bytes() != data:
                    raise PublishError(
                        f"a different checkpoint of {size} records is already published here; "
                        "it is kept, not overwritten (two different trees of one size: a fork)",
                        where=str(numbered),
                        hint="run `trustgate log verify --checkpoint-dir` to see which one the log matches",
                    ) from None
            current = self.latest()
            current_size = _size_of(current) if current is not None else None
            if current_size is None or current_size <= size:
                os.replace(temp, self.directory / LATEST)
            _fsync_directory(self.directory)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def _write_temp(self, data: bytes) -> Path:
        return _write_temp(self.directory, data)


def _write_temp(directory: Path, data: bytes) -> Path:
    """`data` in a new file of a unique name in `directory`, on disk (fsync) before it is renamed."""
    fd, name = tempfile.mkstemp(prefix=".checkpoint.", dir=directory)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(name, 0o644)
    return Path(name)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def directory_checkpoints(directory: Path) -> list[Path]:
    """Every checkpoint file of a published directory: the numbered ones by size, then `checkpoint`.

    Raises:
        PublishError: the directory cannot be read, or holds no checkpoint.
    """
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise PublishError(
            f"cannot read the checkpoint directory: {e.strerror or e}", where=str(directory)
        ) from e
    numbered = sorted((int(m.group(1)), name) for name in names if (m := _NUMBERED.match(name)) is not None)
    out = [directory / name for _, name in numbered]
    if LATEST in names:
        out.append(directory / LATEST)
    if not out:
        raise PublishError(
            "no published checkpoint here (no `checkpoint` or `checkpoint.<size>` file)", where=str(directory)
        )
    return out


# -- a witness's state ------------------------------------------------------------------


@dataclass(slots=True)
class WitnessState:
    """A witness's state directory: per log, the last checkpoint it cosigned (`<origin>.checkpoint`).

    The witness step runs inside `locked()`, an exclusive lock (`.lock`,
    flock) held from reading the state to replacing it: two witness runs at
    once take turns, so the second sees what the first cosigned and cannot
    cosign a fork of it (a split view). `save` writes a temporary file of a
    unique name, fsyncs it, renames it over the state and fsyncs the
    directory: the state is on disk before the cosignature is released.
    """

    directory: Path

    def path(self, origin: str) -> Path:
        return self.directory / (origin.replace("/", "_") + ".checkpoint")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state directory's lock (created if missing).

        Raises:
            DecisionLogError: the directory cannot be created or locked.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = open(self.directory / ".lock", "a")  # noqa: SIM115 - closed below, after the yield
        except OSError as e:
            raise DecisionLogError(
                f"cannot lock the witness state: {e.strerror or e}", where=str(e.filename or self.directory)
            ) from e
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self, origin: str) -> str | None:
        """The last checkpoint cosigned for `origin`, None when none is yet.

        Raises:
            DecisionLogError: it cannot be read.
        """
        path = self.path(origin)
        try:
            return path.read_bytes().decode()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise DecisionLogError(
                f"cannot read the witness state: {getattr(e, 'strerror', None) or e}", where=str(path)
            ) from e

    def save(self, origin: str, note: str) -> None:
        """Make `note` the last checkpoint cosigned for `origin`, durably.

        Raises:
            DecisionLogError: it cannot be written (the old state stands).
        """
        path = self.path(origin)
        try:
            temp = _write_temp(self.directory, note.encode())
            try:
                os.replace(temp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            _fsync_directory(self.directory)
        except OSError as e:
            raise DecisionLogError(
                f"cannot write the witness state: {e.strerror or e}", where=str(e.filename or path)
            ) from e


# -- a git ref in another repository ----------------------------------------------------


@dataclass(slots=True)
class GitPublisher:
    """Checkpoints as commits on a ref of a git repository (a local path, or a URL pushed to).

    Each checkpoint is one commit whose tree holds one file, `checkpoint`;
    the ref's history is every published checkpoint. The ref only moves
    forward: when it already holds a larger tree, nothing is committed. A
    remote is fetched (one commit deep) into a temporary bare repository,
    and the new commit pushed as a fast-forward.
    """

    repository: str
    ref: str = "refs/heads/checkpoints"
    timeout: float = GIT_TIMEOUT_SECONDS

    @property
    def where(self) -> str:
        return f"{_shown(self.repository)} {self.ref}"

    @property
    def _local(self) -> bool:
        return Path(self.repository).is_dir()

    def latest(self) -> str | None:
        if self._local:
            return self._read(Path(self.repository), self.ref)
        with tempfile.TemporaryDirectory(prefix="trustgate-checkpoints-") as temp:
            work = self._init(Path(temp))
            return self._read(work, "refs/trustgate/tip") if self._fetch(work) else None

    def publish(self, note: str, size: int) -> None:
        if self._local:
            repo = Path(self.repository)
            for attempt in range(_PUSH_ATTEMPTS):
                parent = self._resolve(repo, self.ref)
                commit = self._commit(repo, note, size, parent)
                if commit is None:
                    return
                message = f"trustgate checkpoint {size}"
                done = self._git(
                    repo, "update-ref", "-m", message, self.ref, commit, parent or _ZERO, check=False
                )
                if done.returncode == 0:
                    return
                if attempt == _PUSH_ATTEMPTS - 1:  # another writer moved the ref each time
                    raise PublishError(
                        f"cannot move the ref to the checkpoint of {size} records: {_last_line(done.stderr)}",
                        where=self.where,
                    )
            return
        for attempt in range(_PUSH_ATTEMPTS):
            with tempfile.TemporaryDirectory(prefix="trustgate-checkpoints-") as temp:
                work = self._init(Path(temp))
                parent = self._resolve(work, "refs/trustgate/tip") if self._fetch(work) else None
                commit = self._commit(work, note, size, parent)
                if commit is None:
                    return
                done = self._git(
                    work, "push", "--quiet", self.repository, f"{commit}:{self.ref}", check=False
                )
                if done.returncode == 0:
                    return
                if attempt == _PUSH_ATTEMPTS - 1 or "rejected" not in done.stderr.decode("utf-8", "replace"):
                    raise PublishError(
                        f"cannot push the checkpoint of {size} records: {_last_line(done.stderr)}",
                        where=self.where,
                        hint="check the URL, the credentials (ssh key, credential helper) and that "
                        "trustgate may push to this ref",
                    )

    # -- git plumbing ---------------------------------------------------------------

    def _init(self, work: Path) -> Path:
        self._git(work, "init", "--quiet", "--bare")
        return work

    def _fetch(self, work: Path) -> bool:
        """Fetch the ref's tip into refs/trustgate/tip; False when the remote has no such ref yet."""
        listed = self._git(work, "ls-remote", "--", self.repository, self.ref).stdout.decode()
        if not listed.strip():
            return False
        self._git(
            work, "fetch", "--quiet", "--depth=1", "--", self.repository, f"+{self.ref}:refs/trustgate/tip"
        )
        return True

    def _resolve(self, repo: Path, ref: str) -> str | None:
        done = self._git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        out = done.stdout.decode().strip()
        if done.returncode == 0 and out:
            return out
        if done.returncode == 1 and not done.stderr.strip():
            return None  # no such ref yet
        raise PublishError(
            f"not a git repository, or unreadable: {_last_line(done.stderr)}", where=self.where
        )

    def _read(self, repo: Path, ref: str) -> str | None:
        commit = self._resolve(repo, ref)
        if commit is None:
            return None
        done = self._git(repo, "cat-file", "blob", f"{commit}:{LATEST}", check=False)
        if done.returncode != 0:
            raise PublishError(f"the tip of the ref has no `{LATEST}` file", where=self.where)
        return done.stdout.decode("utf-8", "replace")

    def _commit(self, repo: Path, note: str, size: int, parent: str | None) -> str | None:
        """The commit publishing `note` on top of `parent`; None when the parent holds a larger tree."""
        if parent is not None:
            current = self._read(repo, parent)
            current_size = _size_of(current) if current is not None else None
            if current == note or (current_size is not None and current_size > size):
                return None
        blob = self._git(repo, "hash-object", "-w", "--stdin", input=note.encode()).stdout.decode().strip()
        tree = (
            self._git(repo, "mktree", input=f"100644 blob {blob}\t{LATEST}\n".encode())
            .stdout.decode()
            .strip()
        )
        args = ["commit-tree", tree, "-m", f"trustgate checkpoint: {size} records"]
        if parent is not None:
            args += ["-p", parent]
        return self._git(repo, *args).stdout.decode().strip()

    def _git(
        self, repo: Path, *args: str, input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        command = ["git", "-C", str(repo), *args]
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=self.timeout, check=False, env=_env(), input=input
            )
        except FileNotFoundError as e:
            raise PublishError("git is not installed", where=self.where, hint="install git") from e
        except subprocess.TimeoutExpired as e:
            raise PublishError(
                f"`git {args[0]}` did not finish within {self.timeout:g} s", where=self.where
            ) from e
        if check and done.returncode != 0:
            raise PublishError(f"`git {args[0]}` failed: {_last_line(done.stderr)}", where=self.where)
        return done


def _env() -> dict[str, str]:
    # As presync/git.py: GIT_DIR and the like would point git elsewhere; how to reach a remote
    # (GIT_SSH_COMMAND, credential helpers) stays the operator's. The commits name trustgate.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _GIT_KEEP}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        GIT_AUTHOR_NAME="trustgate",
        GIT_AUTHOR_EMAIL="trustgate@localhost",
        GIT_COMMITTER_NAME="trustgate",
        GIT_COMMITTER_EMAIL="trustgate@localhost",
    )
    return env


_GIT_KEEP = ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH")


def _shown(repository: str) -> str:
    return re.sub(r"://[^/@]*@", "://", repository)  # no credentials in messages


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else "no message"


def describe(publishers: Sequence[Publisher]) -> str:
    """`dir ...; git ...`, for messages."""
    return "; ".join(p.where for p in publishers)
