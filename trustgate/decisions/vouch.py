"""What a reader of the decision log may vouch for without trusting whoever runs its database.

Owns: judging a stored checkpoint (its chain signature and its C2SP note
must both verify, with the auditor's key when one is given, else with the
key stored beside it), finding the newest such checkpoint that covers a
record, and one record's place under it: its leaf must be the stored leaf and
its inclusion proof must lead to the signed root (O(log n), one query of
nodes). `log show`, `log prove` and the auditor UI say "covered by", hand out
a proof or show a signer's key only through these, so a row the database's
operator altered or made up is never presented as verified; and a record's
chain columns as the record says them (`chain_columns`: the hash recomputed,
stored columns that differ flagged). Leaves out the whole log's check
(`chain.Verifier`, `log verify`) and presentation.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trustgate.decisions import merkle
from trustgate.decisions.chain import (
    GENESIS,
    Checkpoint,
    Entry,
    entry_hash,
    key_id,
    shown_id,
    stored_checkpoint_problem,
)
from trustgate.decisions.note import NoteVerifier, TreeHead
from trustgate.decisions.store import Filters
from trustgate.errors import DecisionLogError

MAX_REFUSED = 64  # newer checkpoints that do not verify read before giving up (rows made up in bulk)


class Reader(Protocol):
    """What these checks read of a store (`SqlStore` has it)."""

    def tree_checkpoints(self, covering: int = 0) -> Iterable[Checkpoint]: ...

    def leaf_and_inclusion_proof(self, index: int, size: int) -> tuple[bytes, list[bytes]]: ...

    def tree_size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Vouched:
    """A stored tree checkpoint whose chain signature and note verify with `key`.

    `pinned`: `key` is the one the reader gave (`--verifier-key`); otherwise
    it is the key stored beside the checkpoint, which tells a row made up
    without any key from a signed one but not whose key it is: compare `vkey`.
    """

    checkpoint: Checkpoint
    head: TreeHead
    key: Ed25519PublicKey
    pinned: bool

    @property
    def key_id(self) -> str:
        """The id of the key that verified it (not the row's key_id column)."""
        return key_id(self.key)

    @property
    def vkey(self) -> str:
        """The signed-note verifier key its note verified with, for the auditor to compare with theirs."""
        return NoteVerifier.ed25519(self.key).vkey()

    @property
    def checked_with(self) -> str:
        return "the verifier key given" if self.pinned else "the key stored beside it (not pinned)"


@dataclass(frozen=True, slots=True)
class Refused:
    """A stored checkpoint that cannot be vouched for; `reason` reads after "it" ("is not signed")."""

    checkpoint: Checkpoint
    reason: str

    def describe(self) -> str:
        cp = self.checkpoint
        return f"the {shown_id(cp.kind)} checkpoint of {shown_id(cp.time)} at #{cp.seq} {self.reason}"


def judge(cp: Checkpoint, pinned: Ed25519PublicKey | None = None) -> Vouched | Refused:
    """`cp` vouched for when both its signatures verify (with `pinned` when given), else refused."""
    reason = stored_checkpoint_problem(cp, pinned)
    if reason is None and not cp.note:
        reason = "has no tree head (a chain checkpoint only)"
    if reason is not None:
        return Refused(cp, reason)
    head = cp.tree_head()
    assert head is not None  # its note verified
    key = pinned or Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key))
    return Vouched(cp, head, key, pinned is not None)


def newest_vouched(
    store: Reader, *, covering: int = 0, pinned: Ed25519PublicKey | None = None
) -> tuple[Vouched | None, list[Refused]]:
    """The newest tree checkpoint of at least `covering` records that verifies, and newer ones that do not.

    A checkpoint that does not verify is skipped, not trusted: proofs fall
    back to an older one that verifies, and the caller flags the refused.
    """
    refused: list[Refused] = []
    for cp in store.tree_checkpoints(covering):
        judged = judge(cp, pinned)
        if isinstance(judged, Vouched):
            return judged, refused
        refused.append(judged)
        if len(refused) >= MAX_REFUSED:
            break
    return None, refused


def beyond_log(store: Reader, vouched: Vouched) -> str | None:
    """Why `vouched` proves nothing in this log: it signs more records than the log's tree holds
    (rolled back or truncated since it was signed); None when the tree holds them all.
    """
    size = store.tree_size()
    if vouched.checkpoint.seq > size:
        return (
            f"the newest signed checkpoint claims {vouched.checkpoint.seq} records, but the log's tree "
            f"holds {size} (the log was truncated, or a row altered)"
        )
    return None


def within_log(store: Reader, vouched: Vouched) -> None:
    """Refuse, for a reader that hands out proofs of many records (the archive), `beyond_log`.

    Raises:
        DecisionLogError: the checkpoint is beyond the tree.
    """
    reason = beyond_log(store, vouched)
    if reason is not None:
        raise DecisionLogError(reason, hint="run `trustgate log verify`")


def inclusion(store: Reader, entry: Entry, vouched: Vouched) -> tuple[list[bytes], str | None]:
    """The inclusion proof of `entry` under `vouched`, and why it does not prove the record (None if it does).

    The record must be a decision record (`Entry.malformed`: a malformed
    one is never vouched for, whatever the tree says), its leaf must be the
    stored leaf (else the record was altered after it was appended), and the
    proof must lead to the root the checkpoint signs (else the stored tree
    was altered).

    Raises:
        DecisionLogError: the store cannot be read, or lacks a node.
    """
    malformed = entry.malformed()
    if malformed is not None:
        return [], f"record #{entry.seq} is not a decision record ({malformed}): it was altered or damaged"
    index, size = entry.seq - 1, vouched.checkpoint.seq
    stored, hashes = store.leaf_and_inclusion_proof(index, size)
    leaf = merkle.leaf_hash(entry.body)
    if stored != leaf:
        return hashes, (
            f"record #{entry.seq} is not the leaf the Merkle tree holds for it: it was altered after it "
            "was appended"
        )
    try:
        merkle.verify_inclusion(index, size, leaf, hashes, vouched.head.root)
    except merkle.ProofError:
        return hashes, (
            f"the stored tree's inclusion proof of #{entry.seq} does not lead to the root the checkpoint "
            f"at #{size} signs: the tree table was altered"
        )
    return hashes, None


@dataclass(frozen=True, slots=True)
class Coverage:
    """One record under the log's signed checkpoints, as far as a reader can check it.

    `vouched` is the newest tree checkpoint covering the record that
    verifies (None: none yet, or none that verifies: see `refused`, the
    newer ones that do not); `problem` says why the record is not proven
    under it (None: proven, `hashes` is the inclusion proof).
    """

    entry: Entry
    vouched: Vouched | None
    refused: list[Refused]
    hashes: list[bytes]
    problem: str | None

    @property
    def proven(self) -> bool:
        return self.vouched is not None and self.problem is None

    def proof(self) -> dict[str, Any]:
        """The proof `log prove` prints and `log verify-proof` checks (only when `proven`)."""
        assert self.vouched is not None and self.problem is None
        return {
            "index": self.entry.seq - 1,
            "treeSize": self.vouched.checkpoint.seq,
            "leafHash": merkle.leaf_hash(self.entry.body).hex(),
            "hashes": [h.hex() for h in self.hashes],
            "checkpoint": self.vouched.checkpoint.note,
            "record": self.entry.record(),
        }


def cover(store: Reader, entry: Entry, *, pinned: Ed25519PublicKey | None = None) -> Coverage:
    """Where `entry` stands under the checkpoints (call inside `store.snapshot()`).

    Raises:
        DecisionLogError: the store cannot be read, or lacks a node.
    """
    vouched, refused = newest_vouched(store, covering=entry.seq, pinned=pinned)
    if vouched is None:
        return Coverage(entry, None, refused, [], None)
    beyond = beyond_log(store, vouched)  # no proof leads through nodes the log does not hold
    if beyond is not None:
        return Coverage(entry, vouched, refused, [], beyond)
    hashes, problem = inclusion(store, entry, vouched)
    return Coverage(entry, vouched, refused, hashes, problem)


@dataclass(frozen=True, slots=True)
class ChainColumns:
    """A record's place in the chain as its record says it, not as the columns store it.

    No signature covers the stored `hash` and `prev` columns: `hash` is
    recomputed from the record, its position and the stored `prev`
    (`entry_hash`), and `stored_hash` is the stored column when it differs
    (None when it agrees). `prev` is the stored column; `prev_problem` says
    why it is not the hash recomputed from the record before it (None when
    it is, or when that record was pruned and cannot be read).
    """

    hash: str
    prev: str
    stored_hash: str | None
    prev_problem: str | None

    @property
    def problems(self) -> list[str]:
        """What is wrong with the stored columns, one line each (empty when they agree)."""
        out = []
        if self.stored_hash is not None:
            out.append(f"the stored hash column is {self.stored_hash}, not the record's hash {self.hash}")
        return out + ([] if self.prev_problem is None else [self.prev_problem])


def chain_columns(entry: Entry, before: Entry | None) -> ChainColumns:
    """`entry`'s chain columns checked against its record and `before`, the record at `entry.seq - 1`.

    `before` None: #1 must link to the genesis hash; any other position's
    predecessor was pruned, and its link is left to `log verify` (the prune anchor).
    """
    digest = entry_hash(entry.prev, entry.body, entry.seq)
    expected = GENESIS if entry.seq == 1 else None
    if before is not None and before.seq == entry.seq - 1:
        expected = entry_hash(before.prev, before.body, before.seq)
    prev_problem = None
    if expected is not None and entry.prev != expected:
        prev_problem = (
            f"the stored prev column is not the hash of record #{entry.seq - 1} "
            f"recomputed from it ({expected})"
        )
    return ChainColumns(digest, entry.prev, None if entry.hash == digest else entry.hash, prev_problem)


class Rows(Protocol):
    """What `read_chain_columns` reads of a store (`SqlStore` has it)."""

    def query(
        self, filters: Filters, *, limit: int | None = None, newest_first: bool = True
    ) -> Iterator[Entry]: ...


def read_chain_columns(store: Rows, entry: Entry) -> ChainColumns:
    """`chain_columns` of `entry`, reading the record before it (one row by position, not by id).

    Raises:
        DecisionLogError: the store cannot be read.
    """
    before = None
    if entry.seq > 1:
        before = next(store.query(Filters(above=entry.seq - 2, below=entry.seq), limit=1), None)
    return chain_columns(entry, before)
