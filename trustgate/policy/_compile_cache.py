"""A cache of compiled policy artefacts across runs, in the user's cache directory.

Owns: where entries live, how they are named (a hash of everything that made
them: the inputs, trustgate's and the engine's code), writing them atomically
and reading them back only when they are intact and could not have been
written by anyone but the user. Leaves out: what is cached and how it is
made (the callers: `_normalise.normalise`).

A cache entry may only ever save time, never change a verdict: an entry that
is missing, unreadable, truncated, not ours, or whose MAC or key does not
match is ignored, and the caller computes the value afresh (and stores it
again). Each entry carries an HMAC-SHA256 under a per-user secret kept
outside the cache directory (`$XDG_STATE_HOME/trustgate/compile-cache.key`,
mode 0600): a cache directory restored from elsewhere (a CI cache shared
between branches, a copied home) or edited by hand cannot hand a compiler a
weakened policy, because whoever wrote it did not hold this machine's key.
Concurrent runs are safe: an entry is written to a temporary file and
renamed over the old one, so a reader sees a whole entry or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_FORMAT = 1  # bumped when the entry layout changes
_MAX_ENTRIES = 256  # files; one per distinct policy set, pruned oldest first when over
_MAX_ENTRY_BYTES = 64 * 1024 * 1024  # bytes; anything larger is not an entry of ours


class CompileCache:
    """Entries as files under one directory (created 0700 when missing).

    An entry is one header line (format, key, SHA-256 of the body) and the body.
    """

    def __init__(self, directory: Path, *, key_file: Path | None = None) -> None:
        self.directory = directory
        self.key_file = key_file if key_file is not None else _default_key_file(os.environ)
        self._secret: bytes | None = None

    @classmethod
    def for_user(cls, environ: Mapping[str, str]) -> CompileCache:
        """`$XDG_CACHE_HOME/trustgate/compiled`, else `~/.cache/trustgate/compiled`; the key file
        from `$XDG_STATE_HOME` of the same environment (the CLI passes its own).

        Raises:
            RuntimeError, KeyError: no home directory can be found (`Path.home`).
        """
        base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(Path(base) / "trustgate" / "compiled", key_file=_default_key_file(environ))

    @staticmethod
    def key(parts: Iterable[str | bytes]) -> str:
        """A hex SHA-256 over `parts`, each length-prefixed (no two sequences collide)."""
        digest = hashlib.sha256()
        for part in parts:
            data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    def load(self, key: str) -> Any | None:
        """The JSON value stored under `key`, or None when there is no intact entry of ours."""
        body = self.load_bytes(key)
        if body is None:
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # pragma: no cover - the digest matched what we wrote
            return None

    def store(self, key: str, value: Any) -> None:
        """Write `value` (JSON-able) under `key`; a failure to write is ignored (no cache)."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        self.store_bytes(key, text.encode("utf-8", "surrogatepass"))

    def load_bytes(self, key: str) -> bytes | None:
        """The bytes stored under `key`, or None when there is no intact entry of ours."""
        try:
            if not self._trusted(os.stat(self.directory)):
                return None
            fd = os.open(self.directory / f"{key}.entry", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not self._trusted(info) or not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_ENTRY_BYTES:
                return None
            with os.fdopen(fd, "rb") as f:
                fd = -1
                raw = f.read()
        except OSError:
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        secret = self._mac_key()
        header, newline, body = raw.partition(b"\n")
        if secret is None or not newline or not hmac.compare_digest(header, _header(secret, key, body)):
            return None  # truncated, another key's, another format, altered, or not written here
        return body

    def store_bytes(self, key: str, body: bytes) -> None:
        """Write `body` under `key`, atomically; a failure to write is ignored (no cache)."""
        import tempfile  # here: most runs only read

        secret = self._mac_key()
        if secret is None:
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._trusted(os.stat(self.directory)):
                return
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".entry", dir=self.directory)
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_header(secret, key, body) + b"\n" + body)
            os.replace(tmp, self.directory / f"{key}.entry")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._prune()

    def _prune(self) -> None:
        entries: list[tuple[int, str]] = []
        try:
            with os.scandir(self.directory) as found:
                for e in found:
                    with contextlib.suppress(OSError):  # another run may remove it meanwhile
                        entries.append((e.stat(follow_symlinks=False).st_mtime_ns, e.path))
        except OSError:
            return
        if len(entries) <= _MAX_ENTRIES:
            return
        for _, path in sorted(entries)[: len(entries) - _MAX_ENTRIES]:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _mac_key(self) -> bytes | None:
        """The per-user secret that signs entries (made on first use); None: no cache."""
        if self._secret is None:
            self._secret = _read_or_make_secret(self.key_file)
        return self._secret or None

    @staticmethod
    def _trusted(info: os.stat_result) -> bool:
        # Written by this user, and not writable by anyone else: otherwise another
        # account could hand us policy text that skips a check.
        owner = os.getuid() if hasattr(os, "getuid") else info.st_uid
        return info.st_uid == owner and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _header(secret: bytes, key: str, body: bytes) -> bytes:
    prefix = f"trustgate-compile-cache {_FORMAT} {key} ".encode()
    return prefix + hmac.new(secret, prefix + body, hashlib.sha256).hexdigest().encode()


def _default_key_file(environ: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/trustgate/compile-cache.key`, else `~/.local/state/trustgate/...`: beside,
    not inside, the cache directory, so restoring or copying a cache does not carry the key."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "trustgate" / "compile-cache.key"


_SECRET_BYTES = 32


def _read_or_make_secret(path: Path) -> bytes:
    """The secret in `path`, made (0600) when missing; b"" when it cannot be had or is not private
    to this user (readable or writable by others, another owner, not a file).

    A new secret is written whole to a temporary file and then linked into place, which fails if
    another run (or thread) got there first: a reader never sees a secret half written.
    """
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            made = _make_secret(path)
            if made is None:
                continue  # another run made it meanwhile: read theirs
            return made
        except OSError:
            return b""
        try:
            info = os.fstat(fd)
            owner = os.getuid() if hasattr(os, "getuid") else info.st_uid
            if info.st_uid != owner or not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
                return b""
            secret = os.read(fd, _SECRET_BYTES + 1)
        except OSError:
            return b""
        finally:
            os.close(fd)
        return secret if len(secret) == _SECRET_BYTES else b""
    return b""


def _make_secret(path: Path) -> bytes | None:
    """A new secret linked into place at `path`; None when one is already there; b"" on failure."""
    import tempfile  # here: only the first run on a machine makes the secret

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".key", dir=path.parent)  # mode 0600
    except OSError:
        return b""
    try:
        secret = os.urandom(_SECRET_BYTES)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        os.link(tmp, path)
        return secret
    except FileExistsError:
        return None
    except OSError:
        return b""
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_ACTIVE: list[CompileCache | None] = []  # empty: not chosen yet (the user's, on first use)


def use(cache: CompileCache | None) -> None:
    """Choose the cache the compilers consult for this process; None turns caching off."""
    _ACTIVE[:] = [cache]


def use_for_user(environ: Mapping[str, str]) -> None:
    """Choose the user's cache (`CompileCache.for_user`), or none when there is no home directory."""
    try:
        use(CompileCache.for_user(environ))
    except (RuntimeError, KeyError):  # no home directory to be found: no cache
        use(None)


def active() -> CompileCache | None:
    """The chosen cache; when none was chosen (a library caller), the user's, once."""
    if not _ACTIVE:
        use_for_user(os.environ)  # the CLI chooses before (`--no-cache`); this is for library use
    return _ACTIVE[0]


def code_fingerprint(files: Iterable[str]) -> bytes:
    """A digest of the files whose code makes an entry (their bytes) with trustgate's version.

    Hashing the source rather than trusting the version number keeps an
    editable install honest: an edited rewrite never meets entries made by
    the old one.
    """
    from trustgate import __version__

    digest = hashlib.sha256(f"trustgate {__version__}\0".encode())
    for name in files:
        try:
            digest.update(Path(name).read_bytes())
        except OSError:  # pragma: no cover - a module's own file is always there
            digest.update(os.urandom(16))  # unknowable code: never match an old entry
        digest.update(b"\0")
    return digest.digest()
