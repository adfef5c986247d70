"""RFC 6962 Merkle trees: hashes, roots, inclusion and consistency proofs, and their verification.

Owns: the hashing of RFC 6962 §2.1 (leaf = SHA-256(0x00 ‖ data), node =
SHA-256(0x01 ‖ left ‖ right)), computing roots and proofs from the hashes of
complete subtrees (whoever stores them: the decision log keeps them in its
`tree_nodes` table), `CompactRange` (the right edge of a growing tree, so an
append costs O(log n)), and verifying proofs as RFC 9162 §2.1.3.2 and
§2.1.4.2 describe. Leaves out: storage, signing, what the leaves are. Pure:
no I/O.

A complete subtree is named by (level, index): it covers leaves
`[index << level, (index + 1) << level)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustgate.errors import Error

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> the hash of that complete subtree
NodeSource = Callable[[int, int], bytes]


class ProofError(Error):
    """A Merkle proof does not verify (or is malformed): a failed verification, not an operations problem."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """The complete subtrees, left to right, that make up leaves [lo, hi), as (level, index)."""
    out = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while lo + (1 << level) > hi:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def range_hash(lo: int, hi: int, node: NodeSource) -> bytes:
    """MTH(D[lo:hi]) for the ranges RFC 6962 recurses on (lo is 0, or a multiple of 2^k ≥ hi - lo)."""
    parts = [node(level, index) for level, index in subtrees(lo, hi)]
    if not parts:
        return EMPTY_ROOT
    digest = parts[-1]
    for left in reversed(parts[:-1]):
        digest = node_hash(left, digest)
    return digest


def root(size: int, node: NodeSource) -> bytes:
    """MTH of the first `size` leaves."""
    return range_hash(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeSource) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1.

    Raises:
        ValueError: index is not in the tree.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")

    def path(lo: int, hi: int) -> list[bytes]:
        if hi - lo <= 1:
            return []
        k = _split(hi - lo)
        if index - lo < k:
            return [*path(lo, lo + k), range_hash(lo + k, hi, node)]
        return [*path(lo + k, hi), range_hash(lo, lo + k, node)]

    return path(0, size)


def consistency_proof(old_size: int, new_size: int, node: NodeSource) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1 (empty when old_size is 0 or new_size).

    Raises:
        ValueError: old_size is larger than new_size.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a tree of {old_size} cannot be a prefix of a tree of {new_size}")
    if old_size in (0, new_size):
        return []

    def subproof(lo: int, hi: int, complete: bool) -> list[bytes]:
        m, n = old_size - lo, hi - lo
        if m == n:
            return [] if complete else [range_hash(lo, hi, node)]
        k = _split(n)
        if m <= k:
            return [*subproof(lo, lo + k, complete), range_hash(lo + k, hi, node)]
        return [*subproof(lo + k, hi, False), range_hash(lo, lo + k, node)]

    return subproof(0, new_size, True)


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1-5).

    Raises:
        ProofError: the index is outside the tree, or the proof has the wrong length.
    """
    if not 0 <= index < size:  # 1.
        raise ProofError(f"leaf index {index} is outside a tree of {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash in the inclusion proof is not 32 bytes")
    fn, sn, r = index, size - 1, leaf  # 2., 3.
    for p in proof:  # 4.
        if sn == 0:  # 4.1.
            raise ProofError("the inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:  # 4.2.
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:  # 4.3.
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # 4.4.
    if sn != 0:  # 5.
        raise ProofError("the inclusion proof is shorter than the tree is high")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: `leaf` is the leaf at `index` of the tree of `size` with `expected_root`.

    Raises:
        ProofError: it is not.
    """
    if root_from_inclusion_proof(index, size, leaf, proof) != expected_root:
        raise ProofError(
            f"the inclusion proof of leaf {index} does not lead to the root of the tree of {size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: the tree of `old_size` with `old_root` is a prefix of the one of `new_size`.

    Raises:
        ProofError: it is not, or the proof is malformed.
    """
    if old_size > new_size:
        raise ProofError(f"a tree of {old_size} cannot be a prefix of a smaller tree of {new_size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash in the consistency proof is not 32 bytes")
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between trees of one size must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the tree of {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:  # 1.
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # 2. an exact power of two: the old root is a node of the proof
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # 3.
    while fn & 1:  # 4.
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # 5.
    for c in path[1:]:  # 6.
        if sn == 0:  # 6.1.
            raise ProofError("the consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:  # 6.2.
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:  # 6.3.
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1  # 6.4.
    if sn != 0:  # 7.
        raise ProofError("the consistency proof is shorter than the tree is high")
    if fr != old_root:
        raise ProofError(f"the consistency proof does not lead to the root of the old tree of {old_size}")
    if sr != new_root:
        raise ProofError(f"the consistency proof does not lead to the root of the new tree of {new_size}")


@dataclass(slots=True)
class CompactRange:
    """The right edge of a tree of `size` leaves: one complete subtree per set bit of `size`.

    Appending a leaf costs O(1) amortized, O(log n) at most, and returns the
    complete subtrees it completed, to be stored.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)  # largest subtree first

    @classmethod
    def at(cls, size: int, node: NodeSource) -> CompactRange:
        """The compact range of the first `size` leaves of a stored tree."""
        return cls(size, [node(level, index) for level, index in subtrees(0, size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the new complete subtrees as (level, index, hash), the leaf first."""
        index = self.size
        created = [(0, index, leaf)]
        digest, level = leaf, 0
        while (index >> level) & 1:
            digest = node_hash(self.hashes.pop(), digest)
            level += 1
            created.append((level, index >> level, digest))
        self.hashes.append(digest)
        self.size += 1
        return created

    def push(self, leaf: bytes) -> None:
        """`append` for a reader: nothing is returned (verify's hot loop)."""
        digest, index, hashes = leaf, self.size, self.hashes
        while index & 1:
            digest = node_hash(hashes.pop(), digest)
            index >>= 1
        hashes.append(digest)
        self.size += 1

    def push_recording(self, leaf: bytes, levels: Sequence[Any]) -> None:
        """`push`, also feeding each complete subtree it completes, the leaf first, to `levels[level]`.

        `levels` holds one hash object per level (`hashlib.sha256()`): fed a
        whole tree this way, each ends as the digest of that level's nodes in
        index order, which `log verify` compares with the stored nodes'.
        """
        digest, index, hashes = leaf, self.size, self.hashes
        levels[0].update(leaf)
        level = 0
        while index & 1:
            digest = node_hash(hashes.pop(), digest)
            index >>= 1
            level += 1
            levels[level].update(digest)
        hashes.append(digest)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        digest = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            digest = node_hash(left, digest)
        return digest


def memory_nodes(leaves: Sequence[bytes]) -> NodeSource:
    """A `NodeSource` over leaf hashes held in memory (tests, small trees)."""
    tree = CompactRange()
    nodes: dict[tuple[int, int], bytes] = {}
    for leaf in leaves:
        for level, index, digest in tree.append(leaf):
            nodes[(level, index)] = digest

    def node(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    return node
