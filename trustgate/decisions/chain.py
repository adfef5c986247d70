"""The hash chain and its signed checkpoints, and the verifier that walks them.

Owns: the entry hash (`entry_hash`), checkpoints (what they sign, Ed25519
signing and checking), and `Verifier`, which walks a store's entries in
sequence order and names the first record that was altered, removed, inserted
or reordered. Leaves out: reading the store (it is handed iterators), reading
key files (`keys.py`; `from_file` and `load_public_key` are kept as names that
call it) and the command line. Pure: no I/O.

Entry n is the RFC 8785 encoding of `{"prev": h(n-1), "record": <record>,
"seq": n}`, hashed with SHA-256. The stored record bytes are already
canonical, and RFC 8785 orders those three keys as written, so the entry is
assembled by concatenation and the verifier never re-encodes a record. The
first entry's `prev` is 64 zeros; after a prune it is the hash of the last
pruned entry, which a prune checkpoint records. See docs/adr/0003.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustgate.config import DEFAULT_CLOCK_SKEW_SECONDS
from trustgate.decisions import merkle
from trustgate.decisions.canonical import canonical, timestamp, timestamp_micros, uuid7_ms
from trustgate.decisions.note import (
    NoteError,
    NoteVerifier,
    TreeHead,
    open_checkpoint,
    origin_for,
    sign_note,
    split_note,
)
from trustgate.decisions.record import index_terms, shape_problem
from trustgate.errors import ConfigError, DecisionLogError

GENESIS = "0" * 64
CHECKPOINT_TYPE = "trustgate.dev/decision-checkpoint/v1"
_LOOKAHEAD = 64  # entries read ahead to tell an insertion from a reordering

# What `Verifier.run_rows` reads: seq, id, time, gate, verdict, record bytes, prev, hash,
# and the record's query index as "kind\x1fvalue" items joined by "\x1e" (None for none),
# kind and value escaped (`escape_term`).
Row = tuple[int, str, str, str, str, bytes, str, str, str | None]

# An index item's kind and value are escaped before they are joined: a record value holding the
# separators ("a\x1enamespace\x1fkube-system") would otherwise read as two items, and index rows
# forged to match that reading would pass as the record's. ESC (\x1b) introduces an escape.
_ESCAPE = {0x1B: "\x1b0", 0x1E: "\x1b1", 0x1F: "\x1b2"}
_UNESCAPE = re.compile("\x1b([012])")
_SPECIAL = re.compile("[\x1b\x1e\x1f]")


def escape_term(text: str) -> str:
    """`text` with ESC, RS and US escaped, as `index_item_sql` escapes a column (unchanged without them)."""
    return text.translate(_ESCAPE) if _SPECIAL.search(text) else text


def unescape_term(text: str) -> str:
    """The inverse of `escape_term`."""
    return _UNESCAPE.sub(lambda m: "\x1b\x1e\x1f"["012".index(m[1])], text) if "\x1b" in text else text


def index_item(kind: str, value: str) -> str:
    """One index item as the stores aggregate it (`SqlStore.verify_rows`): escaped, joined by US."""
    return f"{escape_term(kind)}\x1f{escape_term(value)}"


def split_index(joined: str | None) -> list[tuple[str, str]]:
    """Index items joined by RS (`Row`'s last field) as (kind, value) pairs, unescaped."""
    out = []
    for item in joined.split("\x1e") if joined else ():
        kind, _, value = item.partition("\x1f")
        out.append((unescape_term(kind), unescape_term(value)))
    return out


def entry_hash(prev: str, body: bytes, seq: int) -> str:
    """SHA-256 (hex) of the canonical entry `{"prev", "record", "seq"}`."""
    return hashlib.sha256(
        b'{"prev":"' + prev.encode() + b'","record":' + body + b',"seq":' + str(seq).encode() + b"}"
    ).hexdigest()


def export_line(prev: str, body: bytes, seq: int) -> bytes:
    """`{"hash", "prev", "record", "seq"}` in RFC 8785 form: the line `trustgate log export` writes.

    prev is the stored column, which anyone with write access to the database sets: it is
    encoded as a JSON string (never pasted in), so no value of it adds keys or lines. "hash" is
    the SHA-256 of the same line without it (for an honest prev, 64 hex digits, `entry_hash`).
    """
    try:
        said = canonical(prev)
    except ValueError:  # a lone surrogate: escaped, still one JSON string
        said = json.dumps(prev).encode()
    tail = b',"record":' + body + b',"seq":' + str(seq).encode() + b"}"
    digest = hashlib.sha256(b'{"prev":' + said + tail).hexdigest()
    return b'{"hash":"' + digest.encode() + b'","prev":' + said + tail


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored record with its place in the chain."""

    seq: int
    id: str
    time: str
    gate: str
    verdict: str
    body: bytes  # the record, RFC 8785 encoded
    prev: str
    hash: str

    def record(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    def malformed(self) -> str | None:
        """Why the stored record is not a decision record (None: a JSON object with a string id).

        Only an altered or damaged row is: readers list it flagged (a view
        that cannot read more of it raises `record.MALFORMED_RECORD`), and
        nothing vouches for it (`vouch.cover` never proves it).
        """
        try:
            loaded = json.loads(self.body)
        except ValueError as e:  # not UTF-8 (UnicodeDecodeError is one), not JSON
            return f"not JSON: {e}"
        if not isinstance(loaded, dict):
            return f"a JSON {type(loaded).__name__}, not an object"
        if not isinstance(loaded.get("id"), str):
            return "a JSON object without an id"
        return shape_problem(loaded)  # fields of other types than a decision record's


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: "the chain's entry `seq` has hash `hash`" at `time`.

    `kind` is `periodic`, `manual` or `prune` (the anchor a pruned chain starts
    from). Unsigned when the log has no key: `key_id`, `public_key` and
    `signature` are empty then.
    """

    seq: int
    hash: str
    time: str
    kind: str
    key_id: str = ""
    public_key: str = ""  # base64 of the raw 32-byte Ed25519 key
    signature: str = ""  # base64 of the Ed25519 signature over `payload()`
    note: str = ""  # the C2SP signed checkpoint of the Merkle tree of the first `seq` records
    # Why the stored row is no checkpoint (a column that is not text: an edit, since SQLite's columns
    # are typeless); the column then reads "?", and nothing vouches for it (`signature_problem`).
    malformed: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any], *, where: str) -> Checkpoint:
        """A checkpoint from its stored columns (seq, hash, time, kind, key_id, public_key, signature, note).

        A text column holding anything else (a BLOB of the same bytes, a
        number) makes it `malformed`: every reader then refuses it as not
        verified, where it would otherwise fail deep in the note's parser.

        Raises:
            DecisionLogError: `seq` is not an integer (an altered row, `where` the store's URL).
        """
        if type(row[0]) is not int:
            raise DecisionLogError(
                f"a checkpoint row's chain position is not a number: {str(row[0])[:40]!r}",
                where=where,
                hint="the checkpoints table was altered: run `trustgate log verify`",
            )
        texts = list(row[1:8])
        bad = [
            f"its {name} column holds {stored_type(value)}, not text"
            for name, value in zip(_CHECKPOINT_TEXT_COLUMNS, texts, strict=True)
            if type(value) is not str
        ]
        if not bad:
            return cls(row[0], *texts)
        columns = zip(_CHECKPOINT_TEXT_COLUMNS, texts, strict=True)
        shown = {name: value if type(value) is str else "?" for name, value in columns}
        return cls(row[0], **shown, malformed=f"is malformed: {', '.join(bad)} (the row was altered)")

    def tree_head(self) -> TreeHead | None:
        """The tree head the note signs (None for a checkpoint made before the Merkle tree).

        Raises:
            NoteError: the note is malformed.
        """
        if not self.note:
            return None
        body, _ = split_note(self.note)
        return TreeHead.parse(body)

    def payload(self) -> bytes:
        return canonical(
            {
                "type": CHECKPOINT_TYPE,
                "seq": self.seq,
                "hash": self.hash,
                "time": self.time,
                "kind": self.kind,
                "keyId": self.key_id,
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "kind": self.kind,
            "keyId": self.key_id,
            "publicKey": self.public_key,
            "signature": self.signature,
            "note": self.note,
        }


_CHECKPOINT_TEXT_COLUMNS = ("hash", "time", "kind", "key_id", "public_key", "signature", "note")


class NotUtf8Text(bytes):
    """A text value that is not UTF-8, as stored: SQLite keeps whatever bytes it is given
    (`CAST(x'ff' AS TEXT)`), and `log verify` reads them as this rather than fail to decode."""

    def __repr__(self) -> str:
        return bytes.__repr__(self)


def stored_type(value: object) -> str:
    """What a stored value is, for a message about a column of the wrong type (SQLite's are typeless)."""
    kind = {
        bytes: "a BLOB",
        NotUtf8Text: "bytes that are not UTF-8",
        str: "text",
        int: "an integer",
        float: "a real number",
        type(None): "NULL",
    }
    shown = repr(value)
    shown = shown if len(shown) <= 40 else f"{shown[:37]}..."
    return f"{kind.get(type(value), type(value).__name__)} ({shown})"


def key_id(public_key: Ed25519PublicKey) -> str:
    """`sha256:<hex>` of the DER SubjectPublicKeyInfo, as elsewhere in trustgate."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


class CheckpointSigner:
    """Signs checkpoints with an Ed25519 private key."""

    def __init__(self, *, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)
        self._raw_public = base64.b64encode(
            self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ).decode()

    @classmethod
    def from_pem(cls, data: bytes, *, where: str = "") -> CheckpointSigner:
        """A signer from a PEM (PKCS#8) Ed25519 private key, e.g. from `openssl genpkey -algorithm ed25519`.

        Args:
            where: where the key came from, for messages (its file).

        Raises:
            ConfigError: the key is encrypted, malformed, or not Ed25519.
        """
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"not an unencrypted PEM private key: {e}",
                where=where,
                hint="create one with `openssl genpkey -algorithm ed25519 -out decision-log.pem`",
            ) from e
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                "the checkpoint key must be an Ed25519 key",
                where=where,
                hint="create one with `openssl genpkey -algorithm ed25519 -out decision-log.pem`",
            )
        return cls(private_key=key)

    @classmethod
    def from_file(cls, path: str | Path) -> CheckpointSigner:
        """`keys.read_signer(path)`, kept for callers of this name (the reading is in `keys.py`)."""
        from trustgate.decisions.keys import read_signer

        return read_signer(path)

    def sign(self, *, seq: int, hash: str, time: str, kind: str, root: bytes | None = None) -> Checkpoint:
        """Sign the chain head, and (given the Merkle `root` of the first `seq` records) a C2SP checkpoint."""
        unsigned = Checkpoint(seq, hash, time, kind, key_id=self.key_id, public_key=self._raw_public)
        signature = base64.b64encode(self._key.sign(unsigned.payload())).decode()
        note = ""
        if root is not None:
            note = sign_note(TreeHead(self.origin, seq, root).text(), self.origin, self._key)
        return Checkpoint(
            seq,
            hash,
            time,
            kind,
            key_id=self.key_id,
            public_key=self._raw_public,
            signature=signature,
            note=note,
        )

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The key itself (a witness cosigns with a key loaded the same way)."""
        return self._key

    @property
    def origin(self) -> str:
        """The checkpoints' origin line, which is also the signed-note key name."""
        return origin_for(self.public_key)

    def note_verifier(self) -> NoteVerifier:
        return NoteVerifier.ed25519(self.public_key)


def public_key_from_pem(data: bytes, *, where: str = "") -> Ed25519PublicKey:
    """A PEM Ed25519 public key (or the private key, whose public half is taken).

    Args:
        where: where the key came from, for messages (its file).

    Raises:
        ConfigError: not a PEM Ed25519 key.
    """
    key: Any
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as e:
            raise ConfigError("not a PEM Ed25519 public key", where=where) from e
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the checkpoint key must be an Ed25519 key", where=where)
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """`keys.read_public_key(path)`, kept for callers of this name (the reading is in `keys.py`)."""
    from trustgate.decisions.keys import read_public_key

    return read_public_key(path)


def signature_problem(cp: Checkpoint, pinned: Ed25519PublicKey | None) -> str | None:
    """Why a checkpoint's chain signature does not check out (by `pinned` when given); None when it does."""
    if cp.malformed is not None:
        return cp.malformed
    if not cp.signature:
        return "is not signed" if pinned is not None else None
    try:
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key))
    except ValueError:
        return "carries a malformed public key"
    key = pinned or embedded
    if pinned is not None and key_id(pinned) != cp.key_id:
        return f"is signed by key {shown_id(cp.key_id)}, not by the pinned key {key_id(pinned)}"
    if key_id(embedded) != cp.key_id:
        return "names a key id that does not match its public key"
    try:
        key.verify(base64.b64decode(cp.signature), cp.payload())
    except (InvalidSignature, ValueError):
        return "has a signature that does not verify (the checkpoint was altered)"
    return None


def shown_id(value: str) -> str:
    """An id column as a message quotes it: as it is when every character of it is printable, else
    its Python repr (`'\\r\\x1b[2Kintact: ...'`).

    No hash covers the column: someone with write access to the database can
    store any text there, and a message that printed it raw could repaint
    the terminal or forge lines over `log verify`'s verdict.
    """
    return value if value.isprintable() else repr(value)


def _shown_time(micros: int) -> str:
    return timestamp(_EPOCH + dt.timedelta(microseconds=micros))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(skew: float) -> int:
    return round(skew * 1_000_000)


@dataclass(frozen=True, slots=True)
class TimeFloor:
    """What a signed checkpoint says about the records after it: none is dated before the earlier of
    its signed time and the newest record it covers (less the clock skew), the bound (ADR 9, item 12).

    The records it covers bound it as well as its time: a signer whose clock ran ahead (a replica,
    `log checkpoint` on another machine) signs a time after every record, and that time alone would
    make each honest record after it "misdated" until the clocks passed it (and the writer would
    refuse every checkpoint over them). A record backdated before records already covered is caught.
    """

    seq: int
    signed: int  # Unix microseconds of its signed time
    newest: int | None  # Unix microseconds of the newest record time it covers (None: not known)
    label: str  # "the periodic checkpoint of 2026-... at #10"

    @classmethod
    def of(cls, cp: Checkpoint, newest: int | None = None) -> TimeFloor | None:
        """The floor a checkpoint sets, or None: a prune checkpoint is signed after the records it
        keeps were written (it sets none), and a time not in `timestamp`'s form sets none."""
        signed = timestamp_micros(cp.time)
        if cp.kind == "prune" or signed is None:
            return None
        return cls(
            cp.seq, signed, newest, f"the {shown_id(cp.kind)} checkpoint of {shown_id(cp.time)} at #{cp.seq}"
        )

    @property
    def bound(self) -> int | None:
        """Unix microseconds no record after it is dated before (less the skew); None while the
        records it covers are not known."""
        return None if self.newest is None else min(self.signed, self.newest)

    def covering(self, newest: int | None) -> TimeFloor:
        """This floor, with the newest record time it covers known."""
        return TimeFloor(self.seq, self.signed, newest, self.label)


def time_problem(
    record_time: object,
    record_id: object,
    floor: TimeFloor | None,
    skew: float,
    ceiling: TimeFloor | None = None,
    *,
    micros: int | None = None,
) -> str | None:
    """Why a record's time cannot be true (None when it can), as a message's end.

    A time not exactly in `timestamp`'s form (UTC, microseconds) is no time
    trustgate wrote. A record dated before `floor.bound` (the checkpoint before
    it) was written after that checkpoint with a false time: a backdated
    decision. One dated after `ceiling`'s signed time (the checkpoint that first
    covers it, whose time was taken when it read the head) did not exist yet
    when it was signed. Its UUIDv7 id carries the time it was made, by the same
    clock, in milliseconds: one dated away from it was edited or forged. `skew`
    (seconds) allows for writers' clocks and for a record's wait in the
    writer's queue; the id and the time, two readings of one clock, may also
    differ by a millisecond. `micros`: `timestamp_micros(record_time)`, when the caller has it.
    """
    if micros is None:
        micros = timestamp_micros(record_time)
    if micros is None:
        shown = repr(record_time) if type(record_time) is str else "none"
        return (
            f"has the time {shown_id(shown)}, not one trustgate writes (UTC to the microsecond, as in "
            "2025-01-31T12:00:00.000000Z): it sorts elsewhere than the moment it names, so no "
            "checkpoint bounds it; it was written by something else than trustgate"
        )
    shown = shown_id(str(record_time))
    allowed = _micros(skew)
    bound = floor.bound if floor is not None else None
    if floor is not None and bound is not None and micros < bound - allowed:
        newer = "" if bound == floor.signed else f" (or the newest record it covers, {_shown_time(bound)})"
        return (
            f"is dated {shown}, before {floor.label} that precedes it{newer}, by more than the allowed "
            f"clock skew of {skew:g} s: it was written after that checkpoint with a false time, or the "
            "clock of a writer is wrong"
        )
    if ceiling is not None and micros > ceiling.signed + allowed:
        return (
            f"is dated {shown}, after {ceiling.label}, the first to cover it, by more than the allowed "
            f"clock skew of {skew:g} s: it was dated forward, or the clock of a writer is wrong"
        )
    made = uuid7_ms(record_id)
    if made is not None and abs(made - micros // 1000) > allowed // 1000 + 1:
        return (
            f"is dated {shown}, but its id (a UUIDv7) was made at {_shown_time(made * 1000)} (more than "
            f"the allowed clock skew of {skew:g} s apart): its time or its id was forged"
        )
    return None


@dataclass(frozen=True, slots=True)
class Problem:
    """Something `log verify` found.

    `kind` is altered, removed, inserted, reordered, misdated or checkpoint.
    """

    kind: str
    seq: int
    id: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "id": self.id, "message": self.message}


@dataclass(slots=True)
class Report:
    """What `log verify` found."""

    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str = GENESIS
    anchor: Checkpoint | None = None
    checkpoints: int = 0  # stored in the database
    kept: int = 0  # kept checkpoints checked (`--checkpoint`, `--checkpoint-dir`)
    signed_by: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tree_size: int | None = None  # recomputed from the records (None: the tree was not checked)
    root: str = ""  # hex RFC 6962 root of the recomputed tree
    consistent: list[str] = field(default_factory=list)  # the tree checkpoints the log was proven to extend
    # The last position a checkpoint the auditor can trust vouches for: a kept one, or a stored one
    # signed by the pinned key (0: none). Records after it are only self-consistent (`Verifier._coverage`).
    covered_through: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "head": self.head,
            "anchor": self.anchor.to_json() if self.anchor else None,
            "checkpoints": self.checkpoints,
            "keptCheckpoints": self.kept,
            "signedBy": sorted(self.signed_by),
            "problems": [p.to_json() for p in sorted(self.problems, key=lambda p: p.seq)],
            "warnings": self.warnings,
            "treeSize": self.tree_size,
            "root": self.root,
            "consistentWith": self.consistent,
            "coveredThrough": self.covered_through,
            "uncovered": self.uncovered,
        }

    @property
    def uncovered(self) -> int:
        """How many records lie beyond the newest checkpoint the auditor can trust."""
        if self.last_seq is None or self.last_seq <= self.covered_through:
            return 0
        return self.last_seq - max(self.covered_through, (self.first_seq or 1) - 1)


@dataclass(frozen=True, slots=True)
class Kept:
    """A checkpoint an auditor kept (its signature already checked): `label` names it (the file)."""

    label: str
    head: TreeHead


@dataclass(frozen=True, slots=True)
class StoredTree:
    """What `Verifier` needs of the stored Merkle tree: its nodes (read lazily) and its size (the head's).

    `nodes` streams every stored node as (level, index, hash), by level then
    index: proofs read nodes below the root, so each is compared with the
    tree recomputed from the records, not the root alone.
    """

    node: merkle.NodeSource
    size: int
    nodes: Callable[[], Iterable[tuple[int, int, bytes]]] | None = None


class Verifier:
    """Walks entries in `seq` order and checks the chain, the columns, the index and the checkpoints.

    With `tree`, it also recomputes the RFC 6962 tree from the records (after
    a prune, from the stored tree's right edge at the prune), compares it with
    the stored tree, and checks every C2SP checkpoint, stored or `kept`,
    against it: a kept checkpoint of a size the records still cover must have
    the recomputed root of that size; one from before a prune must be proven
    consistent with the recomputed root by the stored tree (RFC 9162
    §2.1.4); one larger than the log means its newest records were removed.

    Args:
        checkpoints: every checkpoint of the store, any order.
        public_key: when given, every checkpoint must be signed by it, and the
            log must have at least one checkpoint (stored or kept).
        deep: also re-encode each record to check its bytes are canonical (slow).
        tree: the stored Merkle tree; None skips every tree check.
        kept: checkpoints the auditor kept, signatures already verified.
        head: the stored chain head (seq, hash) that appends continue from; when given, it must be
            the last record's (or the prune anchor's, or the genesis of an empty log). As stored:
            columns of other types (SQLite's are typeless) are reported as an altered head.
        clock_skew: seconds a record's time may lie before the bound of a checkpoint that precedes
            it (one whose chain signature verifies, by the pinned key when given: `TimeFloor`), after
            the signed time of the first that covers it, or away from the time in its UUIDv7 id
            (`time_problem`); beyond, it is `misdated`. Each kept checkpoint must be a stored one.
    """

    def __init__(
        self,
        *,
        checkpoints: Sequence[Checkpoint],
        public_key: Ed25519PublicKey | None = None,
        deep: bool = False,
        tree: StoredTree | None = None,
        kept: Sequence[Kept] = (),
        head: tuple[int, str] | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS,
    ) -> None:
        self.checkpoints = sorted(checkpoints, key=lambda c: (c.seq, c.time))
        self.clock_skew = clock_skew
        self._signature_problems: dict[int, str | None] = {}  # checkpoint's index -> `signature_problem`
        self.head = head
        self.public_key = public_key
        self.deep = deep
        self.tree = tree
        self.kept = list(kept)
        anchors = [c for c in self.checkpoints if c.kind == "prune"]
        self.anchor = max(anchors, key=lambda c: c.seq) if anchors else None

    def run(self, entries: Iterable[Entry], terms: Iterable[tuple[int, list[str]]] | None = None) -> Report:
        """Verify; `terms` yields (seq, ["kind\\x1fvalue", ...]) in seq order when the index is checked.

        A store's `entries()` and `index_rows()` given together are read as one
        stream (`SqlStore.verify_rows`: one query, the index aggregated per record).
        """
        combine = getattr(entries, "with_index", None)
        rows: Iterable[Row] | None = combine(terms) if combine is not None and terms is not None else None
        if rows is None:
            rows = _rows(entries, terms)
        return self.run_rows(rows, check_index=terms is not None)

    def run_rows(self, rows: Iterable[Row], *, check_index: bool = True) -> Report:
        """Verify rows of (seq, id, time, gate, verdict, record, prev, hash, index) in seq order.

        `index` is the record's query index as "kind\\x1fvalue" items joined by
        "\\x1e" (None for none). Each row is checked on a fast path (hash, link,
        columns, index); the first row failing it is examined again, entry by
        entry, to name what happened to it.
        """
        source = iter(rows)
        try:
            return self._run_rows(source, check_index)
        finally:
            # Stopping at the first problem leaves a database stream open (a COPY, a cursor):
            # close it now, so the connection is usable again, not when the generator is collected.
            close = getattr(source, "close", None)
            if callable(close):
                close()

    def _run_rows(self, source: Iterator[Row], check_index: bool) -> Report:
        report = Report(anchor=self.anchor, checkpoints=len(self.checkpoints), kept=len(self.kept))
        needed = {c.seq for c in self.checkpoints}
        start = self.anchor.seq if self.anchor is not None else 0
        tree: merkle.CompactRange | None = None
        if self.tree is not None:
            try:
                tree = merkle.CompactRange.at(start, self.tree.node)
            except DecisionLogError as e:
                report.problems.append(Problem("altered", start, "", f"the stored Merkle tree: {e.message}"))
                return report
        levels = [hashlib.sha256() for _ in range(64)]  # the recomputed nodes, a digest per level
        roots_needed = {c.seq for c in self.checkpoints if c.note} | {k.head.size for k in self.kept}
        root_at: dict[int, bytes] = {}
        if tree is not None and start in roots_needed:
            root_at[start] = tree.root()
        hash_at: dict[int, str] = {}
        if self.anchor is not None:
            expected_seq, expected_prev = self.anchor.seq + 1, self.anchor.hash
            hash_at[self.anchor.seq] = self.anchor.hash
        else:
            expected_seq, expected_prev = 1, GENESIS
        sha256, loads, deep = hashlib.sha256, json.loads, self.deep
        before: Row | None = None  # the row before the previous one
        previous: Row | None = None
        count = 0
        first_seq: int | None = None
        seen: dict[str, int] = {}  # id -> seq: a decision's id names one record (`log show`, `log prove`)
        floors = self._time_floors()  # also the ceilings: each record's first covering checkpoint's
        next_floor = 0  # the first checkpoint not yet passed: it covers the record read next
        floor: TimeFloor | None = None  # the highest bound of a checkpoint before the record
        newest = -(2**63)  # Unix microseconds of the newest record time read so far
        skew = self.clock_skew
        misdated: Problem | None = None
        more_misdated = 0
        for row in source:
            seq, id_, time_, gate, verdict, body, prev, digest, joined = row
            ok = False
            if (
                seq == expected_seq
                and prev == expected_prev
                and sha256(
                    b'{"prev":"'
                    + prev.encode()
                    + b'","record":'
                    + body
                    + b',"seq":'
                    + str(seq).encode()
                    + b"}"
                ).hexdigest()
                == digest
            ):
                try:
                    record = loads(body.decode())
                except ValueError:
                    record = None
                ok = (
                    type(record) is dict
                    and record.get("id") == id_
                    and record.get("time") == time_
                    and record.get("gate") == gate
                    and record.get("verdict") == verdict
                    and not (deep and canonical(record) != body)
                    and (not check_index or _same_index(joined, record))
                    and contradiction(record) is None
                )
            if not ok:
                problem = self._examine(
                    row, source, expected_seq, expected_prev, previous, before, check_index
                )
                if problem is not None:
                    report.problems.append(problem)
                    break
            earlier = seen.setdefault(id_, seq)
            if earlier != seq:
                report.problems.append(
                    Problem(
                        "inserted",
                        seq,
                        id_,
                        f"record #{seq} ({id_}) repeats the id of record #{earlier}: one decision, one id, "
                        "so one of them was forged (`log show` and `log prove` would name either)",
                    )
                )
                break
            while next_floor < len(floors) and floors[next_floor].seq < seq:
                # From before the first record read (a prune): what it covers is gone, so its signed
                # time alone bounds the records after it.
                passed = floors[next_floor].covering(floors[next_floor].signed)
                if floor is None or (passed.bound or 0) > (floor.bound or 0):
                    floor = passed
                next_floor += 1
            ceiling = floors[next_floor] if next_floor < len(floors) else None
            micros = timestamp_micros(time_)
            reason = time_problem(time_, id_, floor, skew, ceiling, micros=micros)
            if micros is not None and micros > newest:
                newest = micros
            while next_floor < len(floors) and floors[next_floor].seq == seq:
                passed = floors[next_floor].covering(newest)
                if floor is None or (passed.bound or 0) > (floor.bound or 0):
                    floor = passed
                next_floor += 1
            if reason is not None:
                if misdated is None:
                    misdated = Problem("misdated", seq, id_, f"record #{seq} ({shown_id(id_)}) {reason}")
                else:
                    more_misdated += 1
            if seq in needed:
                hash_at[seq] = digest
            if tree is not None:
                tree.push_recording(sha256(b"\x00" + body).digest(), levels)
                if seq in roots_needed:
                    root_at[seq] = tree.root()
            if first_seq is None:
                first_seq = seq
            count += 1
            expected_seq, expected_prev = seq + 1, digest
            before, previous = previous, row
        else:
            self._finish(report, count, first_seq, previous)
            report.problems.extend(_misdated(misdated, more_misdated))
            self._checkpoints(report, hash_at)
            self._kept_stored(report)
            if tree is not None:
                self._tree(report, tree, root_at, start, levels)
            if self.head is not None:
                self._head(report, expected_seq - 1, expected_prev)
            if (
                self.public_key is not None
                and not self.kept
                and not any(c.signature for c in self.checkpoints)
            ):
                report.problems.append(
                    Problem(
                        "checkpoint",
                        report.last_seq or 0,
                        "",
                        "the log has no checkpoint signed by the pinned key: they were deleted, or the log "
                        "was never signed; nothing shows its newest records or a rewrite were not altered",
                    )
                )
            if self.public_key is None and any(c.signature for c in self.checkpoints):
                report.warnings.append(
                    "checkpoint signatures were checked against the keys they carry; "
                    "pass --public-key to require your key"
                )
            if not self.kept and not any(c.signature for c in self.checkpoints):
                # Kept checkpoints were checked instead: they are what catches a rewrite or a truncation.
                report.warnings.append(
                    "no signed checkpoint: removing the newest records, or rewriting the whole chain, "
                    "cannot be detected (configure decisionLog.checkpoint.key)"
                )
            self._coverage(report)
            return report
        self._finish(report, count, first_seq, previous)
        report.problems.extend(_misdated(misdated, more_misdated))
        return report

    def _kept_stored(self, report: Report) -> None:
        """Each kept checkpoint must still be a stored one: checkpoints are never deleted (a prune
        keeps them), and the stored row carries the signed time that bounds the records after it,
        which a kept note does not (deleting it removed that bound)."""
        stored: set[tuple[int, bytes]] = set()
        for cp in self.checkpoints:
            try:
                head = cp.tree_head() if cp.malformed is None else None
            except (NoteError, ValueError):
                continue
            if head is not None:
                stored.add((head.size, head.root))
        for k in self.kept:
            if (k.head.size, k.head.root) not in stored:
                report.problems.append(
                    Problem(
                        "checkpoint",
                        k.head.size,
                        "",
                        f"the kept checkpoint {k.label} ({k.head.size} records) is not among the stored "
                        "checkpoints: they are never deleted (a prune keeps them), so someone with write "
                        "access to the database deleted it, and with it the signed time that bounds the "
                        "records after it (a kept note carries none)",
                    )
                )

    def _signature_problem(self, index: int) -> str | None:
        """`signature_problem` of `self.checkpoints[index]` by the pinned key, computed once."""
        if index not in self._signature_problems:
            self._signature_problems[index] = signature_problem(self.checkpoints[index], self.public_key)
        return self._signature_problems[index]

    def _time_floors(self) -> list[TimeFloor]:
        """The times of the checkpoints whose chain signature (which signs the time) verifies, by seq.

        A checkpoint before the first record read (a prune's anchor) is bounded by its signed time
        alone: the records it covers, which would bound it too, are gone."""
        floors: list[TimeFloor] = []
        for index, cp in enumerate(self.checkpoints):
            if not cp.signature or self._signature_problem(index) is not None:
                continue
            floor = TimeFloor.of(cp)
            if floor is not None:
                floors.append(floor)
        return floors

    # -- what the result vouches for (reporting only: no check here adds a problem) -----------

    def _coverage(self, report: Report) -> None:
        """Set `covered_through` and say plainly what an intact result does not show.

        A checkpoint the auditor can trust is a kept one (checked with their key) or a stored one
        signed by the pinned key: whoever can write the database can delete stored checkpoints but
        not forge one of a key they do not hold. Records after the newest such checkpoint are only
        self-consistent: a rewrite of them, hashes recomputed, passes every other check.
        """
        trusted = [k.head.size for k in self.kept]
        if self.public_key is not None:
            trusted += [c.seq for c in self.checkpoints if c.signature]
        report.covered_through = max(trusted, default=0)
        signed = bool(self.kept) or any(c.signature for c in self.checkpoints)
        if not report.ok or not signed or not report.records:
            return  # not intact, or the "no signed checkpoint" warning already says it all
        if not self.kept:
            report.warnings.append(
                "no checkpoint you kept or one published out of the operator's reach was checked "
                "(--checkpoint/--checkpoint-dir with --verifier-key): this result only shows the log is "
                "self-consistent; whoever can write the database can rewrite records and delete the "
                "stored checkpoints that would show it"
            )
        n = report.uncovered
        if n:
            last = report.last_seq
            assert last is not None
            if report.covered_through:
                newest = f"the newest checked covers #{report.covered_through}"
            elif self.public_key is not None:
                newest = "none checked can be trusted"
            else:
                newest = (
                    "none checked can be trusted: stored ones were checked only against the key beside them"
                )
            report.warnings.append(
                f"records #{last - n + 1}..#{last} ({n} of {report.records}) are covered by no signed "
                f"checkpoint ({newest}): a rewrite of them cannot be detected without a checkpoint you "
                "kept or one published out of the operator's reach (--checkpoint/--checkpoint-dir)"
            )

    def _head(self, report: Report, last_seq: int, last_hash: str) -> None:
        """Compare the stored chain head with where the records end: appends continue from the head."""
        assert self.head is not None
        seq, digest = self.head
        wrong = [
            f"its {column} column holds {stored_type(value)}, not {wanted}"
            for column, value, wanted, ok in (
                ("seq", seq, "an integer", type(seq) is int),
                ("hash", digest, "text", type(digest) is str),
            )
            if not ok
        ]
        if wrong:  # SQLite's columns are typeless: an edit can store anything there
            report.problems.append(
                Problem(
                    "altered",
                    last_seq,
                    "",
                    f"the chain head (table chain_head) was altered: {'; '.join(wrong)}; the records end "
                    f"at #{last_seq} with hash {last_hash}",
                )
            )
            return
        if (seq, digest) == (last_seq, last_hash):
            return
        if seq > last_seq:
            if not any(p.kind == "removed" and p.seq == last_seq + 1 for p in report.problems):
                report.problems.append(
                    Problem(
                        "removed",
                        last_seq + 1,
                        "",
                        f"records #{last_seq + 1}..#{seq} were removed: the chain head says #{seq}, "
                        f"the records end at #{last_seq}",
                    )
                )
            return
        report.problems.append(
            Problem(
                "altered",
                min(seq, last_seq),
                "",
                f"the chain head (table chain_head) was altered: it says #{seq} with hash {digest}, the "
                f"records end at #{last_seq} with hash {last_hash}; the next append would continue "
                "from the forged head",
            )
        )

    def _tree(
        self,
        report: Report,
        tree: merkle.CompactRange,
        root_at: Mapping[int, bytes],
        start: int,
        levels: Sequence[Any],
    ) -> None:
        """Compare the tree recomputed from the records with the stored tree and every tree checkpoint."""
        assert self.tree is not None
        size, head_root = tree.size, tree.root()
        report.tree_size, report.root = size, head_root.hex()
        try:
            stored = merkle.root(size, self.tree.node)
        except DecisionLogError as e:
            stored = None
            report.problems.append(Problem("altered", size, "", f"the stored Merkle tree: {e.message}"))
        if self.tree.size > size and not report.problems:
            report.problems.append(
                Problem(
                    "removed",
                    size + 1,
                    "",
                    f"records #{size + 1}..#{self.tree.size} were removed: the log's head says "
                    f"{self.tree.size} records, they end at #{size}",
                )
            )
        if stored is not None and stored != head_root:
            report.problems.append(
                Problem(
                    "altered",
                    size,
                    "",
                    f"the stored Merkle tree does not match the records: its root of #1..#{size} differs",
                )
            )
        elif stored is not None and self.tree.nodes is not None:
            level = _differing_level(self.tree.nodes(), start, size, levels)
            if level is not None:
                what = "a record's leaf hash" if level == 0 else f"a node at level {level}"
                report.problems.append(
                    Problem(
                        "altered",
                        size,
                        "",
                        f"the stored Merkle tree does not match the records below its root: {what} "
                        "differs, so inclusion proofs of genuine records fail (the tree table was altered)",
                    )
                )
        heads: list[tuple[str, TreeHead]] = []
        for cp in self.checkpoints:
            if (
                not cp.note
                or cp.malformed is not None
                or cp.seq > size
                or (self.anchor is not None and cp.seq < self.anchor.seq)
            ):
                continue  # no tree head, reported by `_checkpoints`, or before the prune (gone by design)
            where = f"the {shown_id(cp.kind)} checkpoint of {shown_id(cp.time)} at #{cp.seq}"
            problem = _note_problem(cp, self.public_key)
            if problem is not None:
                report.problems.append(Problem("checkpoint", cp.seq, "", f"{where} {problem}"))
                continue
            head = cp.tree_head()
            assert head is not None
            heads.append((where, head))
        heads.extend((f"the kept checkpoint {k.label}", k.head) for k in self.kept)
        for where, head in heads:
            if head.size > size:
                report.problems.append(
                    Problem(
                        "removed",
                        size + 1,
                        "",
                        f"records #{size + 1}..#{head.size} were removed: {where} covers {head.size} "
                        f"records, the log has {size}",
                    )
                )
            elif head.size in root_at:
                if root_at[head.size] != head.root:
                    report.problems.append(
                        Problem(
                            "altered",
                            head.size,
                            "",
                            f"the log up to #{head.size} was rewritten: its Merkle root differs from {where}",
                        )
                    )
                else:
                    report.consistent.append(where)
            else:  # from before a prune: only the stored tree can link it to the records
                try:
                    proof = merkle.consistency_proof(head.size, size, self.tree.node)
                    merkle.verify_consistency(head.size, size, head.root, head_root, proof)
                    report.consistent.append(where)
                except (DecisionLogError, merkle.ProofError) as e:
                    report.problems.append(
                        Problem(
                            "altered",
                            head.size,
                            "",
                            f"the log is not consistent with {where}: {e.message}",
                        )
                    )

    @staticmethod
    def _finish(report: Report, count: int, first_seq: int | None, last: Row | None) -> None:
        report.records = count
        report.first_seq = first_seq
        if last is not None:
            report.last_seq, report.head = last[0], last[7]

    def _examine(
        self,
        row: Row,
        source: Iterator[Row],
        expected_seq: int,
        expected_prev: str,
        previous: Row | None,
        before: Row | None,
        check_index: bool,
    ) -> Problem | None:
        """What is wrong with a row that failed the fast path (None if nothing after all)."""
        wrong = _wrong_types(row)
        if wrong is not None:
            id_ = row[1] if type(row[1]) is str else ""
            return Problem("altered", row[0], id_, f"record #{row[0]} ({id_ or '?'}) was altered: {wrong}")
        entry = _entry_of(row)
        ahead = _Peekable(map(_entry_of, source))  # read only when the link is broken, which always fails
        problem = self._link(
            entry,
            expected_seq,
            expected_prev,
            ahead,
            _entry_of(previous) if previous is not None else None,
            _entry_of(before) if before is not None else None,
        )
        if problem is not None:
            return problem
        problem, record = self._columns(entry)
        if problem is None and check_index and not _same_index(row[8], record):
            retyped = RETYPED in (row[8] or "")
            problem = Problem(
                "altered",
                entry.seq,
                entry.id,
                f"record #{entry.seq} ({shown_id(entry.id)}): the query index (namespaces, images, rules, "
                "commits, actors) does not match the record"
                + (
                    ": index rows of it were altered to hold values that are not text (a BLOB of the "
                    "same bytes, a number), which filters and stats never find equal to text"
                    if retyped
                    else ""
                ),
            )
        return problem

    def _checkpoints(self, report: Report, hash_at: Mapping[int, str]) -> None:
        last = report.last_seq if report.last_seq is not None else (self.anchor.seq if self.anchor else 0)
        anchor = self.anchor
        if (
            anchor is not None
            and not anchor.signature
            and self.public_key is None  # a pinned key finds every unsigned checkpoint below
            and any(c.signature for c in self.checkpoints)
        ):
            report.problems.append(
                Problem(
                    "checkpoint",
                    anchor.seq,
                    "",
                    f"the prune checkpoint of {shown_id(anchor.time)} at #{anchor.seq} is not signed, "
                    "but the log's "
                    "checkpoints are: a signed log is pruned with its key (`log prune --key`), so records "
                    f"up to #{anchor.seq} were removed by someone without it; verify against the checkpoints "
                    "you kept (--checkpoint/--checkpoint-dir with --verifier-key) to see what they held",
                )
            )
        for index, cp in enumerate(self.checkpoints):
            where = f"the {shown_id(cp.kind)} checkpoint of {shown_id(cp.time)} at #{cp.seq}"
            reason = self._signature_problem(index)
            if reason is not None:
                report.problems.append(Problem("checkpoint", cp.seq, "", f"{where} {reason}"))
                continue
            if cp.signature:
                report.signed_by.add(cp.key_id)
            if self.anchor is not None and cp.seq < self.anchor.seq:
                continue  # before the prune: those entries are gone by design
            if cp.seq > last:
                report.problems.append(
                    Problem(
                        "removed",
                        last + 1,
                        "",
                        f"records #{last + 1}..#{cp.seq} were removed: {where} covers them",
                    )
                )
            elif hash_at.get(cp.seq) != cp.hash:
                report.problems.append(
                    Problem(
                        "altered",
                        cp.seq,
                        "",
                        f"the chain up to #{cp.seq} was rewritten: its hash differs from {where}",
                    )
                )

    def _columns(self, entry: Entry) -> tuple[Problem | None, dict[str, Any]]:
        try:
            record = json.loads(entry.body.decode())
        except ValueError:
            return Problem(
                "altered", entry.seq, entry.id, f"record #{entry.seq} ({shown_id(entry.id)}) is not JSON"
            ), {}
        if not isinstance(record, dict):
            return Problem(
                "altered", entry.seq, entry.id, f"record #{entry.seq} ({shown_id(entry.id)}) is not an object"
            ), {}
        for column in ("id", "time", "gate", "verdict"):
            if record.get(column) != getattr(entry, column):
                return Problem(
                    "altered",
                    entry.seq,
                    entry.id,
                    f"record #{entry.seq} ({shown_id(entry.id)}): the {column} column says "
                    f"{getattr(entry, column)!r}, the record says {record.get(column)!r}",
                ), record
        if self.deep and canonical(record) != entry.body:
            return Problem(
                "altered",
                entry.seq,
                entry.id,
                f"record #{entry.seq} ({shown_id(entry.id)}) is not canonical JSON",
            ), record
        disagreement = contradiction(record)
        if disagreement is not None:
            return Problem(
                "altered",
                entry.seq,
                entry.id,
                f"record #{entry.seq} ({shown_id(entry.id)}) contradicts itself: {disagreement}",
            ), record
        return None, record

    def _link(
        self,
        entry: Entry,
        expected_seq: int,
        expected_prev: str,
        rows: _Peekable,
        previous: Entry | None,
        before: Entry | None,
    ) -> Problem | None:
        """None when `entry` continues the chain; otherwise what is wrong, as precisely as can be told."""
        label = f"record #{entry.seq} ({shown_id(entry.id)})"
        if entry.seq < expected_seq:
            return Problem("inserted", entry.seq, entry.id, f"{label} lies before the chain's start")
        if entry.seq > expected_seq:
            last = (
                f"#{expected_seq}" if entry.seq == expected_seq + 1 else f"#{expected_seq}..#{entry.seq - 1}"
            )
            return Problem(
                "removed",
                expected_seq,
                "",
                f"record {last} was removed: the chain jumps from #{expected_seq - 1} to {label}",
            )
        self_ok = entry_hash(entry.prev, entry.body, entry.seq) == entry.hash
        if entry.prev == expected_prev:
            if self_ok:
                return None
            return Problem(
                "altered", entry.seq, entry.id, f"{label} was altered: its content does not match its hash"
            )
        # The entry does not link to its predecessor. Look ahead for the entry that does.
        ahead = rows.peek(_LOOKAHEAD)
        moved_from = _original_seq(entry)
        for offset, other in enumerate(ahead, start=1):
            if other.prev != expected_prev:
                continue
            if moved_from is not None and moved_from != entry.seq:
                return Problem(
                    "reordered",
                    entry.seq,
                    entry.id,
                    f"{label} was moved from #{moved_from}; record {shown_id(other.id)} (now #{other.seq}) "
                    f"belongs at #{entry.seq}",
                )
            count = "record" if offset == 1 else f"{offset} records"
            return Problem(
                "inserted",
                entry.seq,
                entry.id,
                f"{label} was inserted: it is not part of the chain ({count} inserted before "
                f"{shown_id(other.id)}, which belongs at #{expected_seq})",
            )
        if moved_from is not None and moved_from > entry.seq:
            n = moved_from - entry.seq
            return Problem(
                "removed",
                entry.seq,
                "",
                f"{n} record{'s' if n > 1 else ''} before {label} (originally #{moved_from}) "
                f"{'were' if n > 1 else 'was'} removed and the later records renumbered",
            )
        if (
            moved_from is not None
            and moved_from < entry.seq
            and previous is not None
            and entry.prev == (before.hash if before else (self.anchor.hash if self.anchor else GENESIS))
        ):
            return Problem(
                "inserted",
                previous.seq,
                previous.id,
                f"record #{previous.seq} ({shown_id(previous.id)}) was inserted: {label} links to the record "
                "before it",
            )
        if not self_ok:
            return Problem(
                "altered",
                entry.seq,
                entry.id,
                f"{label} was altered: neither its content nor its link to #{expected_seq - 1} match",
            )
        if previous is not None:
            return Problem(
                "altered",
                previous.seq,
                previous.id,
                f"record #{previous.seq} ({shown_id(previous.id)}) was altered and re-hashed (or a record "
                f"after it was removed): {label} links to a different predecessor",
            )
        return Problem("altered", entry.seq, entry.id, f"{label} does not link to the start of the chain")


def _misdated(first: Problem | None, more: int) -> list[Problem]:
    """The first misdated record's problem, saying how many later ones are misdated too."""
    if first is None:
        return []
    if not more:
        return [first]
    also = f" (and {more} later record{'s' if more > 1 else ''} misdated too)"
    return [Problem(first.kind, first.seq, first.id, first.message + also)]


_EXIT_CODES = {"allow": 0, "warn": 0, "deny": 1, "error": 3}


def contradiction(record: Mapping[str, Any]) -> str | None:
    """What in a record disagrees with the rest of it (None when it agrees with itself).

    A record is written whole by one gate, so its verdict, exit code, counts
    and findings agree; an edit of one of them (say a deny turned into an
    allow) that leaves the others shows here even after the chain and the
    tree were recomputed. Fields a record lacks are not checked.
    """
    verdict = record.get("verdict")
    findings = record.get("findings")
    severities = (
        [f.get("severity") for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []
    )
    if "exitCode" in record and verdict in _EXIT_CODES and record["exitCode"] != _EXIT_CODES[verdict]:
        return f"the verdict is {verdict!r} but the exit code is {record['exitCode']!r}"
    if verdict in ("allow", "warn") and "error" in severities:
        return f"the verdict is {verdict!r} but a finding blocks"
    if verdict == "deny" and isinstance(findings, list) and "error" not in severities:
        return "the verdict is 'deny' but no finding blocks"
    summary = record.get("summary")
    if isinstance(summary, dict):
        warnings = severities.count("warning")
        if isinstance(findings, list) and summary.get("warnings") != warnings:
            return f"the summary counts {summary.get('warnings')!r} warnings, the findings {warnings}"
        if verdict == "allow" and summary.get("warnings"):
            return "the verdict is 'allow' but the summary counts warnings"
        if verdict in ("allow", "warn", "deny") and summary.get("errors"):
            return f"the verdict is {verdict!r} but the summary counts documents that could not be evaluated"
        objects = (record.get("subject") or {}).get("objects")
        if isinstance(objects, list) and objects:
            statuses = [o.get("status") for o in objects if isinstance(o, dict)]
            counted = {
                "documents": len(objects),
                "passed": statuses.count("passed") + statuses.count("warned"),
                "failed": statuses.count("failed"),
                "errors": statuses.count("error"),
            }
            for name, value in counted.items():
                if name in summary and summary[name] != value:
                    return f"the summary counts {summary[name]!r} {name}, the results {value}"
    return None


def _note_problem(cp: Checkpoint, pinned: Ed25519PublicKey | None) -> str | None:
    """Why a stored checkpoint's C2SP note does not check out (None when it does)."""
    try:
        key = pinned or Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key))
        head = open_checkpoint(cp.note, NoteVerifier.ed25519(key))
    except (NoteError, ValueError) as e:
        return f"has a tree checkpoint that does not verify: {e}"
    if head.size != cp.seq:
        return f"has a tree checkpoint of {head.size} records, not {cp.seq}"
    return None


def stored_checkpoint_problem(cp: Checkpoint, pinned: Ed25519PublicKey | None = None) -> str | None:
    """Why a stored checkpoint cannot be vouched for (None when both its signatures verify).

    Checked against `pinned` when given, else against the key stored beside
    it: that tells a checkpoint altered or made up in the database without
    any key from a signed one, not who signed it (`--verifier-key` pins the key).
    """
    if cp.malformed is not None:
        return cp.malformed
    if not cp.signature:
        return "is not signed"
    reason = signature_problem(cp, pinned)
    if reason is None and cp.note:
        reason = _note_problem(cp, pinned)
    return reason


INDEX_COLUMNS = ("id", "time", "gate", "verdict")  # an entry's columns that filters and lookups read


def differing_columns(entry: Entry, record: Mapping[str, Any]) -> list[str]:
    """The columns of `entry` (INDEX_COLUMNS) that are not what its record says.

    No hash covers them, yet filters select by them: a reader shows the
    record's values and flags these (`log verify` reports them as altered).
    """
    return [c for c in INDEX_COLUMNS if record.get(c) != getattr(entry, c)]


def _differing_level(
    stored: Iterable[tuple[int, int, bytes]], start: int, size: int, levels: Sequence[Any]
) -> int | None:
    """The lowest level where the stored nodes differ from the recomputed ones (`levels`); None if none.

    Compared are the nodes the records after `start` (a prune's anchor)
    completed, up to `size`: node (level, index) is completed by leaf
    ((index + 1) << level) - 1. The stored nodes come by level then index,
    and (level, index) is the table's key, so equal digests mean equal nodes.
    """
    digests = [hashlib.sha256() for _ in levels]
    for level, index, digest in stored:
        if 0 <= level < len(digests) and start < (index + 1) << level <= size:
            digests[level].update(digest)
    for level, (mine, theirs) in enumerate(zip(levels, digests, strict=True)):
        if mine.digest() != theirs.digest():
            return level
    return None


def _same_index(joined: str | None, record: Mapping[str, Any]) -> bool:
    """Whether the stored index items (escaped, joined by \\x1e) are exactly the record's `index_terms`.

    In any order: the stores aggregate in an order of their own.
    """
    expected = [index_item(kind, value) for kind, value in index_terms(record)]
    if joined is None:
        return not expected
    if type(joined) is not str:  # index rows holding bytes that are not UTF-8 (`NotUtf8Text`)
        return False
    return joined == "\x1e".join(expected) or sorted(joined.split("\x1e")) == sorted(expected)


# An index item the store found stored with a type other than text (`SqlStore.verify_rows` makes it
# `RETYPED` + the SQLite types of kind, value and seq): never an escaped item, so never the record's.
RETYPED = "\x1bt"
_ROW_TEXT_COLUMNS = ((1, "id"), (2, "time"), (3, "gate"), (4, "verdict"), (6, "prev"), (7, "hash"))


def _wrong_types(row: Row) -> str | None:
    """Which of a row's columns hold something other than text, bytes for the record (None: none).

    SQLite's columns are typeless: an edit can store a BLOB where text
    belongs (equal bytes, yet unequal to any text in SQL, so filters miss
    it) or a number. Checked first, so the rest of the verifier reads
    strings where it expects them.
    """
    wrong = [
        f"its {name} column holds {stored_type(row[i])}, not text"
        for i, name in _ROW_TEXT_COLUMNS
        if type(row[i]) is not str
    ]
    if type(row[5]) is not bytes:
        wrong.append(f"its record column holds {stored_type(row[5])}")
    if row[8] is not None and type(row[8]) is not str:
        wrong.append(f"its query index reads as {stored_type(row[8])}")
    return "; ".join(wrong) or None


def _entry_of(row: Row) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def _rows(entries: Iterable[Entry], terms: Iterable[tuple[int, list[str]]] | None) -> Iterator[Row]:
    """Entries and their index items (seq order, possibly with gaps) merged into rows."""
    term_iter = iter(terms) if terms is not None else iter(())
    pending: tuple[int, list[str]] = (-1, [])
    for e in entries:
        while pending[0] < e.seq:
            pending = next(term_iter, (1 << 62, []))
        joined = "\x1e".join(pending[1]) if pending[0] == e.seq else None
        yield (e.seq, e.id, e.time, e.gate, e.verdict, e.body, e.prev, e.hash, joined)


def _original_seq(entry: Entry) -> int | None:
    """The position an entry's hash was made for, when it is near where it is now."""
    for delta in range(1, _LOOKAHEAD + 1):
        for seq in (entry.seq + delta, entry.seq - delta):
            if seq > 0 and entry_hash(entry.prev, entry.body, seq) == entry.hash:
                return seq
    return None


class _Peekable(Iterator[Entry]):
    def __init__(self, source: Iterator[Entry]) -> None:
        self._source = source
        self._buffer: collections.deque[Entry] = collections.deque()

    def __next__(self) -> Entry:
        if self._buffer:
            return self._buffer.popleft()
        return next(self._source)

    def peek(self, n: int) -> list[Entry]:
        while len(self._buffer) < n:
            try:
                self._buffer.append(next(self._source))
            except StopIteration:
                break
        return list(self._buffer)[:n]
