"""RFC 6962 hashing and proofs against the published vectors of transparency-dev/merkle.

The leaves, roots and proofs below are those of `testonly/constants.go` and
`proof/verify_test.go` in github.com/transparency-dev/merkle (the
certificate-transparency reference vectors).
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from trustgate.decisions import merkle
from trustgate.decisions.merkle import ProofError

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")]
LEAVES.append(bytes.fromhex("606162636465666768696a6b6c6d6e6f"))
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip

HASHES = [merkle.leaf_hash(d) for d in LEAVES]
NODE = merkle.memory_nodes(HASHES)


def _h(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots(size: int) -> None:
    assert merkle.root(size, NODE).hex() == ROOTS[size]
    tree = merkle.CompactRange()
    for leaf in HASHES[:size]:
        tree.append(leaf)
    assert tree.root().hex() == ROOTS[size]
    assert merkle.CompactRange.at(size, NODE).root().hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    assert merkle.inclusion_proof(index, size, NODE) == _h(proof)
    merkle.verify_inclusion(index, size, HASHES[index], _h(proof), bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    assert merkle.consistency_proof(old, new, NODE) == _h(proof)
    merkle.verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), _h(proof))


def test_every_proof_of_a_larger_tree_round_trips() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
    node = merkle.memory_nodes(leaves)
    roots = [merkle.root(n, node) for n in range(71)]
    for size in range(1, 71):
        for index in range(size):
            merkle.verify_inclusion(
                index, size, leaves[index], merkle.inclusion_proof(index, size, node), roots[size]
            )
    for old, new in itertools.combinations_with_replacement(range(71), 2):
        merkle.verify_consistency(old, new, roots[old], roots[new], merkle.consistency_proof(old, new, node))


SOME = hashlib.sha256(b"some").digest()


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    good, root = _h(proof), bytes.fromhex(ROOTS[size])
    probes = [
        (index - 1, size, HASHES[index], good, root),
        (index + 1, size, HASHES[index], good, root),
        (index ^ 2, size, HASHES[index], good, root),
        (index, size * 2, HASHES[index], good, root),
        (index, size // 2, HASHES[index], good, root),
        (index, size, SOME, good, root),
        (index, size, HASHES[index], good, SOME),
        (index, size, HASHES[index], [*good, root], root),
        (index, size, HASHES[index], [root, *good], root),
        (index, size, HASHES[index], good[:-1], root),
        (index, size, HASHES[index], [*good[:-1], b"\x00" + good[-1][1:]], root),
    ]
    for i, s, leaf, p, r in probes:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, s, leaf, p, r)


@pytest.mark.parametrize(("old", "new", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[str]) -> None:
    good, r1, r2 = _h(proof), bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    probes = [
        (old - 1, new, r1, r2, good),
        (old + 1, new, r1, r2, good),
        (old ^ 2, new, r1, r2, good),
        (old, new * 2, r1, r2, good),
        (old, new // 2, r1, r2, good),
        (old, new, SOME, r2, good),
        (old, new, r1, SOME, good),
        (old, new, r2, r1, good),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*good, r1]),
        (old, new, r1, r2, [r2, *good]),
        (old, new, r1, r2, good[:-1]),
    ]
    for o, n, a, b, p in probes:
        if (o, n) == (old, new) or o != n:
            with pytest.raises(ProofError):
                merkle.verify_consistency(o, n, a, b, p)
