"""git, through the `git` command line: the only place the pre-sync gate runs it.

Owns: opening a repository (a local path, or a URL cloned bare into a cache
directory and fetched on every run), resolving refs, commit ranges and the
fast-forward check, reading commits with the signature status git reports,
exporting files as committed, moving the gated ref with a compare-and-swap
(and pushing it), git notes, and the one normal form of a repository path the
pre-sync gate compares (`repo_path`). Every command runs without a shell, with a
timeout, with the user's and the system's git configuration ignored where it
could change a verdict. Leaves out: what a signature or a change means
(`signatures.py`, `changes.py`).

Why the CLI and not a library: commit signature verification must be git's own
(`gpg.ssh.allowedSignersFile`, GPG through `gpg`), which no Python git library
implements; and the CLI is what the reconciler's side (Flux, Argo CD) runs too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trustgate.errors import Error
from trustgate.model import KUSTOMIZATION_FILES

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/\s]+@[^/\s]+:")  # scheme://... or scp-like user@host:path
_FIELD = "\x1f"
_RECORD = "\x1e"
APPROVAL_TRAILER = "Trustgate-Approve-Deletion"
# Approves a reconciler source added, changed or removed (`changes.sources`).
SOURCE_TRAILER = "Trustgate-Approve-Source"
NOTES_REF = "refs/notes/trustgate"
# The attributes by which `git checkout` writes other bytes than the blob (gitattributes(5), convert.c).
CHECKOUT_ATTRIBUTES = ("text", "crlf", "eol", "ident", "filter", "working-tree-encoding")
# What go-git reads from a commit's header wherever it meets it (`header_problem`).
_HEADER_WORDS = ("tree", "parent", "author", "committer")
# What Go's `bytes.TrimSpace` trims (`unicode.IsSpace`): where go-git's commit header ends
# (`header_problem`).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
_GIT_KEEP = ("GIT_SSH", "GIT_ASKPASS", "GIT_SSL_", "GIT_HTTP_", "GIT_CURL_", "GIT_TRACE")


class GitError(Error):
    """git could not do what was asked: no repository, no such ref, a failed fetch or push."""


@dataclass(frozen=True, slots=True)
class Signature:
    """A commit signature as git verified it.

    `status` is git's `%G?`: G good, U good with unknown validity, B bad, X/Y
    expired signature/key, R revoked key, E cannot be checked (key missing), N none.
    """

    status: str
    signer: str = ""  # %GS: the SSH principal from allowed_signers, or the GPG user id
    key: str = ""  # %GK: the key id or SSH key fingerprint
    fingerprint: str = ""  # %GF: the GPG key fingerprint (empty for SSH)
    kind: str = ""  # "ssh" | "gpg" | "" (unsigned)
    primary: str = ""  # the fingerprint of the GPG key's primary key (`Keyring.vet`); "" until vetted


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    committer_name: str
    committer_email: str
    subject: str
    signature: Signature
    approvals: tuple[str, ...] = ()  # values of Trustgate-Approve-Deletion trailers
    source_approvals: tuple[str, ...] = ()  # values of Trustgate-Approve-Source trailers


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    size: int
    mode: str = "100644"  # 120000: a symbolic link; 160000: a submodule (gitlink)
    object: str = ""  # the blob (or, for a submodule, the commit) it names


@dataclass(slots=True)
class Git:
    """Runs git in one repository (a work tree or a bare repository).

    Args:
        directory: the repository.
        timeout: seconds per command.
        config: `-c key=value` settings for every command.
        env: extra environment (GNUPGHOME for GPG verification).
    """

    directory: Path
    timeout: float = 120.0
    config: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git ARGS` here; with `check`, a non-zero exit raises GitError carrying git's message."""
        command = ["git", "-C", str(self.directory)]
        for key, value in self.config.items():
            command += ["-c", f"{key}={value}"]
        command += list(args)
        env = {
            **_base_env(),
            **self.env,
        }
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=self.timeout, check=False, env=env, input=input
            )
        except FileNotFoundError as e:
            raise GitError("git is not installed", hint="install git (Debian: apt-get install git)") from e
        except subprocess.TimeoutExpired as e:
            raise GitError(
                f"`git {args[0]}` did not finish within {self.timeout:g} s",
                where=str(self.directory),
                hint="raise presync.gitTimeoutSeconds, or check the network to the remote",
            ) from e
        if check and done.returncode != 0:
            raise GitError(
                f"`git {' '.join(_shown(args))}` failed: {_last_line(done.stderr)}", where=str(self.directory)
            )
        return done

    def text(self, *args: str) -> str:
        return self.run(*args).stdout.decode("utf-8", "replace")

    # -- refs ------------------------------------------------------------------

    def resolve(self, ref: str) -> str | None:
        """The commit `ref` points at, or None when it does not exist."""
        done = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False
        )
        out = done.stdout.decode().strip()
        return out if done.returncode == 0 and _SHA.match(out) else None

    def tree_of(self, commit: str) -> str:
        return self.text("rev-parse", f"{commit}^{{tree}}").strip()

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether `newer` descends from `older` (a fast-forward from `older` reaches it)."""
        done = self.run("merge-base", "--is-ancestor", older, newer, check=False)
        if done.returncode not in (0, 1):
            raise GitError(f"cannot compare {older[:12]} and {newer[:12]}: {_last_line(done.stderr)}")
        return done.returncode == 0

    def range(self, tip: str, exclude: str | None, *, limit: int) -> list[str]:
        """Commits reachable from `tip` but not from `exclude`, oldest first; at most `limit` + 1."""
        args = ["rev-list", "--reverse", f"--max-count={limit + 1}", tip]
        if exclude:
            args.append(f"^{exclude}")
        # --max-count applies before --reverse: these are the newest limit+1, enough to see "too many".
        return self.text(*args).split()

    def update_ref(self, ref: str, new: str, old: str | None, message: str) -> None:
        """Move `ref` to `new` only if it still points at `old` (None: only if it does not exist).

        An empty old value is git's "must not exist" in every object format (forty zeros name the
        null object of SHA-1 only: a SHA-256 repository refuses them).
        """
        self.run("update-ref", "-m", message, ref, new, old or "")

    # -- commits ---------------------------------------------------------------

    def commits(self, shas: Sequence[str]) -> list[Commit]:
        """The commits, in the given order, with signatures as git verifies them under `self.config`."""
        if not shas:
            return []
        # What git computes (ids, the signature verdict) comes first; what the committer wrote
        # (names, subject, trailers) after it. Text with our separators in it is refused below:
        # it could otherwise forge the fields that follow it, or a whole record.
        fmt = _FIELD.join(
            [
                "%H",
                "%T",
                "%P",
                "%G?",
                "%GS",
                "%GK",
                "%GF",
                "%an",
                "%ae",
                "%cn",
                "%ce",
                "%s",
                f"%(trailers:key={APPROVAL_TRAILER},valueonly,separator=%x1d)",
                f"%(trailers:key={SOURCE_TRAILER},valueonly,separator=%x1d)",
            ]
        )
        # One `git log` for the whole range: git verifies every signature in one process tree.
        out = self.run(
            "log", "--no-walk=unsorted", f"--format={_RECORD}{fmt}", "--stdin", input="\n".join(shas).encode()
        ).stdout.decode("utf-8", "replace")
        found: dict[str, Commit] = {}
        records = out.split(_RECORD)[1:]
        heads = [r.split(_FIELD, 1)[0] for r in records]
        if heads != list(shas) or any(len(r.rstrip("\n").split(_FIELD)) != 14 for r in records):
            raise GitError(
                "cannot read the commits: a commit's author, committer, subject or trailers contain the "
                "control characters \\x1e or \\x1f, which could forge its signature status; refused",
                where=str(self.directory),
                hint="rewrite the commit without control characters",
            )
        for record in records:
            parts = record.rstrip("\n").split(_FIELD)
            sha, tree, parents, status, signer, key, fpr, an, ae, cn, ce, subject, trailers, sources = parts
            kind = ""
            if status != "N":
                kind = "ssh" if key.startswith("SHA256:") else "gpg"  # ssh-keygen names keys SHA256:...
                if not key:  # git names no key (a revoked SSH key, a missing GPG key): the signature's own
                    kind = self._signature_kind(sha)
            found[sha] = Commit(
                sha=sha,
                tree=tree,
                parents=tuple(parents.split()),
                author_name=an,
                author_email=ae,
                committer_name=cn,
                committer_email=ce,
                subject=subject,
                signature=Signature(status=status, signer=signer, key=key, fingerprint=fpr, kind=kind),
                approvals=tuple(v.strip() for v in trailers.split("\x1d") if v.strip()),
                source_approvals=tuple(v.strip() for v in sources.split("\x1d") if v.strip()),
            )
        return [found[s] for s in shas if s in found]

    def _signature_kind(self, sha: str) -> str:
        """ "ssh" or "gpg", from the armour of the commit's signature header (`gpgsig`)."""
        raw = self._objects([sha], "commit")[sha]
        header = raw.split(b"\n\n", 1)[0]
        return "ssh" if b"\ngpgsig -----BEGIN SSH SIGNATURE-----" in header else "gpg"

    # -- trees -----------------------------------------------------------------

    def ls_tree(self, commit: str, paths: Sequence[str]) -> list[TreeEntry]:
        """Files (blobs and links) under `paths` at `commit`, with their sizes.

        Raises:
            GitError: a name is not UTF-8, or occurs twice: two such names could not be told apart
                (the reconciler applies both; one would go unjudged).
        """
        out = self.run("ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--", *_pathspecs(paths)).stdout
        entries = []
        seen: set[str] = set()
        for raw in out.split(b"\0"):
            if not raw:
                continue
            meta, _, name = raw.partition(b"\t")
            fields = meta.split()
            size = int(fields[3]) if len(fields) == 4 and fields[3].isdigit() else 0
            mode = fields[0].decode() if fields else ""
            obj = fields[2].decode() if len(fields) > 2 else ""
            try:
                path = name.decode("utf-8")
            except UnicodeDecodeError:
                raise GitError(
                    f"the tree of {commit[:12]} holds a file name that is not UTF-8: "
                    f"{name.decode('utf-8', 'backslashreplace')}",
                    where=str(self.directory),
                    hint="rename it: trustgate judges files by name and cannot name this one",
                ) from None
            if path in seen:
                raise GitError(
                    f"the tree of {commit[:12]} holds the name {path} twice", where=str(self.directory)
                )
            seen.add(path)
            entries.append(TreeEntry(path, size, mode, obj))
        return entries

    def named(self, commit: str, name: str) -> list[TreeEntry]:
        """Every file (blob or link) called `name` anywhere in the tree of `commit`, with its size.

        Names that are not UTF-8 are decoded with `surrogateescape`: such a file is still found.
        """
        out = self.run("ls-tree", "-r", "-z", "--full-tree", commit).stdout
        wanted = name.encode()
        found: list[tuple[str, str, str]] = []  # mode, object, path
        for raw in out.split(b"\0"):
            meta, _, path = raw.partition(b"\t")
            fields = meta.split()
            if path.rpartition(b"/")[2] == wanted and len(fields) == 3:
                found.append(
                    (fields[0].decode(), fields[2].decode(), path.decode("utf-8", "surrogateescape"))
                )
        if not found:
            return []
        checked = self.run("cat-file", "--batch-check", input="".join(f"{o}\n" for _, o, _ in found).encode())
        sizes = {}
        for line in checked.stdout.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2].isdigit():
                sizes[parts[0]] = int(parts[2])
        return [TreeEntry(path, sizes.get(obj, 0), mode, obj) for mode, obj, path in found]

    def changed_paths(self, new: str, olds: Sequence[str]) -> dict[str, set[str]]:
        """For each commit of `olds`: the paths whose entry (mode or object) differs between its tree
        and that of `new`, added and removed ones included (one `git diff-tree --stdin`, no rename
        detection).

        Raises:
            GitError: git's answer does not follow `olds`.
        """
        wanted = list(dict.fromkeys(olds))
        if not wanted:
            return {}
        listed = "".join(f"{old} {new}\n" for old in wanted).encode()  # `new` as the commit's parent
        out = self.run("diff-tree", "--stdin", "-r", "-z", "--no-renames", "--always", input=listed).stdout
        found: dict[str, set[str]] = {}
        order = iter(wanted)
        fields = out.split(b"\0")
        current = None
        at = 0
        while at < len(fields):
            field_ = fields[at]
            if field_.startswith(b":") and current is not None and at + 1 < len(fields):
                found[current].add(fields[at + 1].decode("utf-8", "surrogateescape"))  # a raw entry, its path
                at += 2
                continue
            if field_:  # a commit's header (--always: one for each line)
                current = next(order, None)
                if current is None or field_.decode("ascii", "replace") != current:
                    raise GitError(
                        f"`git diff-tree --stdin` answered {field_[:80]!r}", where=str(self.directory)
                    )
                found[current] = set()
            at += 1
        if len(found) != len(wanted):
            raise GitError("`git diff-tree --stdin` left commits out", where=str(self.directory))
        return found

    def blob(self, sha: str) -> bytes:
        return self.run("cat-file", "blob", sha).stdout

    def blobs(self, objects: Sequence[str]) -> dict[str, bytes]:
        """The blobs named, exactly as stored (one `git cat-file --batch`).

        No attribute (`export-ignore`, `export-subst`, `eol`), filter or conversion applies: this is
        the content Flux's checkout writes (go-git applies no attributes). Argo CD checks out with
        the git command line, which applies the checkout attributes: where a file has one that
        changes its bytes (`checkout_conversions`), the caller stops the run.

        Raises:
            GitError: an object is missing or not a blob.
        """
        return self._objects(objects, "blob")

    def check_commits(self, commits: Sequence[Commit], *, whole: Collection[str] = ()) -> None:
        """Refuse a commit that go-git reads otherwise than git (`header_problem`), or, of those named
        in `whole` (a range each of whose commits must be seen), one whose parents as git reports them
        are not those its object names: a shallow clone's boundary or `info/grafts` (which
        `GIT_NO_REPLACE_OBJECTS` leaves alone) cut the history there, and the commits behind it
        would go unjudged.

        Raises:
            GitError: such a commit, named with the line or the parents; or one cannot be read.
        """
        raw = self._objects([c.sha for c in commits], "commit")
        for commit in commits:
            why = header_problem(raw[commit.sha])
            if why:
                raise GitError(
                    f"commit {commit.sha[:12]}: {why}; git and go-git (Flux's source-controller) read "
                    "such a header differently: git takes the tree and parents from the first lines (the "
                    "tree trustgate judges, the one Argo CD checks out), go-git from every such line, the "
                    "last tree winning, so Flux could apply a tree nobody judged; refused",
                    where=str(self.directory),
                    hint="git never writes such a header: recreate the commit with `git commit` and "
                    "re-push the branch",
                )
            named = tuple(
                line[7:].decode("ascii", "replace")
                for line in raw[commit.sha].split(b"\n\n", 1)[0].split(b"\n")
                if line.startswith(b"parent ")
            )
            if commit.sha in whole and named != commit.parents:
                names, seen = (", ".join(p[:12] for p in ps) or "none" for ps in (named, commit.parents))
                raise GitError(
                    f"commit {commit.sha[:12]} names the parents {names} but git reports {seen}: the "
                    "repository is a shallow clone, or `info/grafts` rewrites its history, so commits of "
                    "the range are not seen and could not be judged",
                    where=str(self.directory),
                    hint="give the whole history as --repo (`git fetch --unshallow`, or a URL, which "
                    "trustgate clones in full), and remove info/grafts",
                )

    def _objects(self, objects: Sequence[str], kind: str) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(objects))
        if not wanted:
            return {}
        data = self.run("cat-file", "--batch", input="".join(f"{o}\n" for o in wanted).encode()).stdout
        out: dict[str, bytes] = {}
        at = 0
        for name in wanted:
            end = data.find(b"\n", at)
            header = data[at:end].decode("utf-8", "replace").split() if end >= 0 else []
            if len(header) != 3 or header[0] != name or header[1] != kind or not header[2].isdigit():
                raise GitError(
                    f"cannot read object {name[:12]}: {' '.join(header[1:]) or 'no answer'}",
                    where=str(self.directory),
                    hint="the repository is incomplete (a shallow or partial clone?)",
                )
            size = int(header[2])
            out[name] = data[end + 1 : end + 1 + size]
            at = end + 1 + size + 1  # the content, then a newline
        return out

    def files(self, entries: Sequence[TreeEntry]) -> dict[str, bytes] | None:
        """The regular files of `entries` (from `ls_tree`), read in memory as committed.

        None when the tree needs a directory on disk: it holds links, or a kustomization
        (`kubectl kustomize` reads files). Then use `export`. Submodules are left out
        (the caller reports them).
        """
        if any(e.mode == "120000" or e.path.rpartition("/")[2] in KUSTOMIZATION_FILES for e in entries):
            return None
        regular = [e for e in entries if e.mode.startswith("100")]
        content = self.blobs([e.object for e in regular])
        return {e.path: content[e.object] for e in regular}

    def export(self, entries: Sequence[TreeEntry], into: Path) -> None:
        """Write `entries` (from `ls_tree`) into `into`, as committed.

        Read with `blobs`, not `git archive`: the tree's `.gitattributes` cannot leave a file
        out (`export-ignore`) or rewrite it (`export-subst`). Links that lead outside `into`
        (absolute, `..`, or through another link), and names that are not plain relative
        paths, are refused: a commit cannot make trustgate read files of the host.

        Raises:
            GitError: such a link or name, or the files cannot be written.
        """
        content = self.blobs([e.object for e in entries if e.mode.startswith("100") or e.mode == "120000"])
        root = os.path.realpath(into)
        links = []
        try:
            for entry in entries:
                parts = entry.path.split("/")
                if entry.path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
                    raise GitError(
                        f"cannot unpack the tree: the name {entry.path!r} is not a plain relative path",
                        where=str(self.directory),
                    )
                target = os.path.join(root, *parts)
                if entry.mode == "160000":  # a submodule: an empty directory, as a checkout leaves it
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if entry.mode == "120000":
                    links.append((entry.path, target, content[entry.object]))
                elif entry.mode.startswith("100"):
                    # Links come last, so nothing written here goes through one; O_EXCL: a name
                    # twice in a malformed tree is refused, not overwritten.
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                    with os.fdopen(fd, "wb") as f:
                        f.write(content[entry.object])
            for _, target, link in links:
                os.symlink(os.fsdecode(link), target)
            for name, target, link in links:  # after all are made: a link may lead through another
                resolved = os.path.realpath(target)
                if resolved != root and not resolved.startswith(root + os.sep):
                    raise GitError(
                        f"cannot unpack the tree: {quoted(name)} links to {quoted(os.fsdecode(link))}, "
                        "outside it",
                        where=str(self.directory),
                        hint="a link in the repository points outside it",
                    )
        except (OSError, ValueError) as e:  # ValueError: a NUL in a link's target
            raise GitError(
                f"cannot unpack the tree: {e}",
                where=str(self.directory),
                hint="a name occurs twice in the tree, or the disk is full",
            ) from e

    def object_format(self) -> str:
        """The repository's object format: `sha1` or `sha256`."""
        done = self.run("rev-parse", "--show-object-format", check=False)
        found = done.stdout.decode().strip()
        return found if done.returncode == 0 and found else "sha1"

    def checkout_attributes(self, commit: str, paths: Sequence[str]) -> dict[str, dict[str, str]]:
        """The attributes of `CHECKOUT_ATTRIBUTES` that a checkout of `commit` gives each of `paths`
        (path -> attribute -> `set`, `unset` or the value; unspecified ones are left out).

        Asked of git (`check-attr --cached` over an index read from the commit), so the commit's own
        `.gitattributes` files, their precedence and the macros of the root one count as a checkout
        applies them. Only the commit's: an empty repository borrowing this one's objects
        (`objects/info/alternates`, which takes any path, `:` included) is asked, so this repository's
        `info/attributes` does not count, nor do the system's (`GIT_ATTR_NOSYSTEM`) or the user's
        (`core.attributesFile`) attribute files: those of the reconciler's machine are not ours to know.

        Every `.gitattributes` of the commit is read here first, in this repository: a partial clone
        fetches a missing one then (the empty repository cannot, and `check-attr` takes a file it
        cannot read for none, which would hide its attributes).

        Raises:
            GitError: git cannot read the commit or answer, or a `.gitattributes` of the commit is
                missing (a partial or shallow clone that cannot fetch it).
        """
        if not paths:
            return {}
        self.attribute_files(commit)
        objects = self.text("rev-parse", "--path-format=absolute", "--git-path", "objects").strip()
        try:
            with tempfile.TemporaryDirectory(prefix="trustgate-attributes-") as tmp:
                Git(Path(tmp), timeout=self.timeout).run(
                    "init",
                    "--quiet",
                    "--bare",
                    "--template=",
                    f"--object-format={self.object_format()}",
                    "empty",
                )
                info = Path(tmp) / "empty" / "objects" / "info"
                info.mkdir(parents=True, exist_ok=True)
                (info / "alternates").write_bytes(_c_quoted(os.fsencode(objects)) + b"\n")
                empty = Git(
                    Path(tmp) / "empty",
                    timeout=self.timeout,
                    config={"core.attributesFile": os.devnull},
                    env={"GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_ATTR_NOSYSTEM": "1"},
                )
                empty.run("read-tree", commit)
                listed = "".join(f"{p}\0" for p in paths).encode()
                out = empty.run("check-attr", "--cached", "-z", "--stdin", "-a", input=listed).stdout
        except GitError as e:  # the temporary repository is gone: the gated one is where to look
            raise GitError(e.message, where=str(self.directory), hint=e.hint) from e
        fields = out.split(b"\0")
        found: dict[str, dict[str, str]] = {}
        for at in range(0, len(fields) - 2, 3):
            path, name, value = (f.decode("utf-8", "surrogateescape") for f in fields[at : at + 3])
            if name in CHECKOUT_ATTRIBUTES:
                found.setdefault(path, {})[name] = value
        return found

    def attribute_files(self, commit: str) -> dict[str, bytes]:
        """Every `.gitattributes` of `commit` (path -> content), read in this repository: a partial
        clone fetches the missing ones (`cat-file --batch`).

        Raises:
            GitError: one stays missing.
        """
        try:
            entries = [e for e in self.named(commit, ".gitattributes") if e.mode.startswith(("100", "120"))]
            content = self.blobs([e.object for e in entries])
        except GitError as e:
            raise GitError(
                f"cannot read the .gitattributes files of {commit[:12]} ({e.message}): they decide how "
                "Argo CD's checkout writes the files",
                where=str(self.directory),
                hint="the repository is a partial or shallow clone that cannot fetch them: give a full "
                "clone (or one whose promisor remote is reachable) as --repo",
            ) from e
        return {e.path: content[e.object] for e in entries}

    # -- notes -----------------------------------------------------------------

    def add_note(self, commit: str, text: str) -> None:
        self.run("notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit, input=text.encode())

    def note(self, commit: str) -> str | None:
        done = self.run("notes", f"--ref={NOTES_REF}", "show", commit, check=False)
        return done.stdout.decode() if done.returncode == 0 else None


def quoted(text: str) -> str:
    """A repository's text (a path, a link's target) as a message quotes it: as it is when every
    character of it is printable, else its Python repr, on one line (a newline, CR or ESC that a
    committer put in a link's target must not forge or repaint a line of the message)."""
    return text if text.isprintable() else repr(text)


def checkout_conversions(attributes: Mapping[str, str]) -> list[str]:
    """Which of one file's attributes (`Git.checkout_attributes`) make `git checkout` write other
    bytes than the blob, as `name=value` or `name` (none: []); as git's convert.c decides them, on a
    machine whose git configuration leaves `core.autocrlf` and `core.eol` alone (line ends: LF).

    - `working-tree-encoding` re-encodes the file (any value but UTF-8); `unset`
      (`-working-tree-encoding`) is unspecified, as in git (convert.c `git_path_check_encoding`);
      `set` makes git die ("true/false are no valid working-tree-encodings"): refused too;
    - `ident` (set) expands `$Id$`; `filter` (a driver's name) runs whatever the reconciler's
      configuration names for it (Git LFS's smudge, for one);
    - `eol=crlf` writes CRLF line ends, unless the file is binary (`-text`, `binary`, or `-crlf`
      with `text` unspecified). `text`, `text=auto`, `eol=lf` and `crlf` alone write LF: no change.
    """
    out = []
    encoding = attributes.get("working-tree-encoding")
    if encoding not in (None, "", "unset") and encoding.lower() not in ("utf-8", "utf8"):
        out.append(f"working-tree-encoding={encoding}")
    if attributes.get("ident") == "set":
        out.append("ident")
    driver = attributes.get("filter")
    if driver is not None and driver not in ("set", "unset"):
        out.append(f"filter={driver}")
    text = attributes.get("text")
    binary = text == "unset" or (text not in ("set", "input", "auto") and attributes.get("crlf") == "unset")
    if attributes.get("eol") == "crlf" and not binary:
        out.append("eol=crlf")
    return out


def header_problem(raw: bytes) -> str:
    """Why go-git would read another tree, parents, author or committer from the commit object `raw`
    than git does; "" when it reads the same.

    git (commit.c `parse_commit_buffer`) takes the tree from the first line and the parents from the
    `parent` lines right after it. go-git's `Commit.Decode`, which Flux's source-controller checks
    out with, reads the header line by line with white space trimmed (Go's `bytes.TrimSpace`,
    Unicode spaces too): it skips the continuation lines (` ...`) of `gpgsig` only, reads those of
    every other header (`mergetag`, `gpgsig-sha256`) as header lines, sets the tree at each `tree`
    line (the last wins), adds a parent at each `parent` line, and takes the first line that is
    blank once trimmed for the end of the header (a signed tag's `mergetag` has one, ` `, before the
    tag's message: go-git reads the rest as the message). So the header must be laid out as git
    writes it, `tree`, `parent` lines, `author`, `committer`, and no later line go-git reads as a
    header may read as one of these once trimmed (Python's `str.strip` trims at least what Go's
    does; the end of go-git's header is found with Go's own set).
    """
    lines = raw.split(b"\n\n", 1)[0].split(b"\n")
    at = 1
    while at < len(lines) and lines[at].startswith(b"parent "):
        at += 1
    if (
        not lines[0].startswith(b"tree ")
        or len(lines) < at + 2
        or not lines[at].startswith(b"author ")
        or not lines[at + 1].startswith(b"committer ")
    ):
        return "its header is not laid out as git writes one (`tree`, `parent` lines, `author`, `committer`)"
    signature = False
    for number, line in enumerate(lines[at + 2 :], start=at + 3):
        if signature and line.startswith(b" "):
            continue  # go-git takes the continuation lines of `gpgsig` for the signature, as git does
        text = line.decode("utf-8", "surrogateescape")
        if not text.strip(_GO_SPACE):
            break  # go-git reads the rest as the message
        word = text.strip().split(" ", 1)[0]
        signature = word == "gpgsig"
        if word in _HEADER_WORDS:
            return f"header line {number} ({quoted(text[:80])}) reads as another `{word}` line once trimmed"
    return ""


def _c_quoted(path: bytes) -> bytes:
    """`path` as git reads a C-quoted line of `objects/info/alternates` (a line starting with `"`):
    any byte, a newline or a leading `#` included, reaches git as it is."""
    out = bytearray(b'"')
    for byte in path:
        if byte in (0x22, 0x5C):  # a quote, a backslash
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def is_url(location: str) -> bool:
    """Whether `--repo` names a remote (cloned and pushed) rather than a local repository."""
    return bool(_URL.match(location))


def full_ref(name: str) -> str:
    """`main` -> `refs/heads/main`; a name under `refs/` stays as it is."""
    return name if name.startswith("refs/") else f"refs/heads/{name}"


def ref_format_problem(ref: str, *, timeout: float = 10.0) -> str:
    """Why git would refuse `ref` (a full name, `refs/...`) as a ref name; "" when it accepts it.

    Asked of `git check-ref-format` itself, so the rules are the ones `git update-ref` applies
    when the gated ref is moved: a name it refuses would be judged and recorded, then fail to move.

    Raises:
        GitError: git is missing or does not answer.
    """
    if not ref.startswith("refs/"):  # `full_ref` names everything under refs/: no option to inject
        return "a ref name starts with refs/"
    try:
        done = subprocess.run(
            ["git", "check-ref-format", ref],
            capture_output=True,
            timeout=timeout,
            check=False,
            env=_base_env(),
        )
    except FileNotFoundError as e:
        raise GitError("git is not installed", hint="install git (Debian: apt-get install git)") from e
    except subprocess.TimeoutExpired as e:
        raise GitError(f"`git check-ref-format` did not finish within {timeout:g} s") from e
    if done.returncode == 0:
        return ""
    return (
        "`git check-ref-format` refuses it (`..`, a space, `~^:?*[\\`, `@{`, an empty component, "
        "a `/` at the end...)"
    )


def open_local(path: str, *, timeout: float) -> Git:
    """A local repository (a work tree or bare).

    Raises:
        GitError: `path` does not exist or is not a git repository.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise GitError("no such repository", where=path, hint="give a local repository path or a URL")
    git = Git(directory, timeout=timeout)
    done = git.run("rev-parse", "--git-dir", check=False)
    if done.returncode != 0:
        raise GitError("not a git repository", where=path, hint="give a local repository path or a URL")
    return git


def open_remote(url: str, cache: Path, refs: Sequence[str], *, timeout: float) -> Git:
    """A bare clone of `url` under `cache`, fetched now: `refs` and the notes are up to date.

    Raises:
        GitError: the remote cannot be reached or read.
    """
    cache.mkdir(parents=True, exist_ok=True)
    # Readable, and one per URL: `a/b` and `a_b` (or two URLs alike in their first 200 characters)
    # must not share a clone, whose refs and notes one run would judge or push for the other.
    where = strip_credentials(url)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", where).strip("_")[:200]
    directory = cache / f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:16]}"
    git = Git(directory, timeout=timeout)
    # Runs sharing --cache-dir take turns: two first runs would both add `origin` (the second fails).
    with _locked(cache):
        if not (directory / "HEAD").exists():
            Git(cache, timeout=timeout).run("init", "--quiet", "--bare", str(directory))
        # A run stopped between `init` and `remote add` left a clone without `origin`: add it now.
        known = git.run("config", "--get", "remote.origin.url", check=False).returncode == 0
        git.run("remote", "set-url" if known else "add", "origin", url)
    fetch(git, refs)
    return git


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (flock(2): released when the process dies)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fetch(git: Git, refs: Sequence[str]) -> None:
    """Fetch `refs` (those that exist) and the notes from origin, mirroring them (forced: the gate judges)."""
    with _locked(git.directory):  # two runs fetching into one clone fail on each other's ref locks
        _fetch(git, refs)


def _fetch(git: Git, refs: Sequence[str]) -> None:
    listed = git.run("ls-remote", "origin", *refs, NOTES_REF, check=False)
    if listed.returncode != 0:
        raise GitError(
            f"cannot reach the repository: {_last_line(listed.stderr)}",
            where=strip_credentials(git.run("remote", "get-url", "origin").stdout.decode().strip()),
            hint="check the URL and the credentials (ssh key, credential helper)",
        )
    present = {line.split("\t", 1)[1] for line in listed.stdout.decode().splitlines() if "\t" in line}
    specs = [f"+{r}:{r}" for r in refs if r in present]
    for r in [*refs, NOTES_REF]:  # a ref deleted on the remote is deleted here too
        if r not in present and git.resolve(r) is not None:
            git.run("update-ref", "-d", r)
    if NOTES_REF in present:
        specs.append(f"+{NOTES_REF}:{NOTES_REF}")
    if specs:
        git.run("fetch", "--quiet", "--no-tags", "--prune", "origin", *specs)


def push(git: Git, ref: str, new: str, old: str | None) -> None:
    """Push `new` to `ref` on origin only if the remote still has `old` there (None: absent).

    The gated ref goes alone: a push of several refs is not atomic everywhere, and a refused
    note must not be mistaken for a refused ref (or the reverse). Notes follow with `push_notes`.

    Raises:
        GitError: the remote refused (someone else moved the ref) or cannot be reached.
    """
    args = [
        "push",
        "--quiet",
        "--porcelain",
        f"--force-with-lease={ref}:{old or ''}",
        "origin",
        f"{new}:{ref}",
    ]
    done = git.run(*args, check=False)
    if done.returncode != 0:
        raise GitError(
            f"pushing {ref} failed: {_last_line(done.stderr) or _last_line(done.stdout)}",
            where=strip_credentials(git.run("remote", "get-url", "origin").stdout.decode().strip()),
            hint="the ref moved on the remote meanwhile, or the credentials cannot push; "
            "the next run retries",
        )


def push_notes(git: Git) -> str:
    """Push the notes; "" when they went, else why not (the gated ref is already pushed)."""
    done = git.run("push", "--quiet", "--porcelain", "origin", f"{NOTES_REF}:{NOTES_REF}", check=False)
    if done.returncode == 0:
        return ""
    return _last_line(done.stderr) or _last_line(done.stdout) or "the remote refused"


def strip_credentials(url: str) -> str:
    return re.sub(r"(?<=://)[^/@]*@", "", url)


def _pathspecs(paths: Sequence[str]) -> list[str]:
    return [f":(top,literal){p}" if p else ":(top)" for p in map(repo_path, paths)]


def repo_path(path: str) -> str:
    """A repository path as the gate compares them (`presync.paths`, a scope's PATH, a file): no
    `./`, no empty or `.` part (`a//b`, `a/./b`: `a/b`), no leading or trailing slash; "" for the
    whole tree (`.`, `/`). `..` is kept: it names no path of the tree."""
    return "/".join(part for part in path.strip().split("/") if part not in ("", "."))


def within(path: str, directory: str) -> bool:
    """Whether the repository path `path` is `directory` or lies below it ("" the whole tree); both
    in `repo_path`'s form."""
    return not directory or path == directory or path.startswith(directory + "/")


def secure_path(path: str) -> str:
    """A path inside the repository as `securejoin.SecureJoin(root, path)` makes it (how
    kustomize-controller joins a Kustomization's `spec.path` to the artifact): each `..` drops the
    part before it and cannot climb above the root (`../apps/web`: `apps/web`), then `repo_path`'s
    form. Nothing is stripped: `apps/web ` names a directory whose name ends in a space, as it does to
    securejoin. (Links are not followed: Flux's artifact holds none.)"""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _base_env() -> dict[str, str]:
    # GIT_DIR, GIT_INDEX_FILE, GIT_CONFIG_* and the like would point git elsewhere; how to reach
    # the remote (GIT_SSH_COMMAND, GIT_ASKPASS, TLS settings) is the operator's to choose.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith(_GIT_KEEP)}
    env["GIT_CONFIG_NOSYSTEM"] = "1"  # a system-wide gpg.program or allowedSignersFile must not decide
    env["GIT_NO_REPLACE_OBJECTS"] = "1"  # refs/replace would show other content than the reconciler deploys
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password
    env["LC_ALL"] = "C"
    return env


def _shown(args: Sequence[str]) -> list[str]:
    return [strip_credentials(a) for a in args[:4]]


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else ""
