"""Forging a decision log as someone with write access to its database would: rows changed directly,
every later hash recomputed (chain, Merkle tree, summaries), checkpoints deleted.

Reaches into the store's private SQL on purpose: a forger is not limited to its API.
"""

from __future__ import annotations

from typing import Any

from trustgate.decisions.canonical import canonical
from trustgate.decisions.chain import GENESIS, entry_hash
from trustgate.decisions.log import open_store
from trustgate.decisions.record import index_terms


def forge(
    url: str, changes: dict[int, dict[str, Any]], *, drop_after: int | None = None, keep_before: int = 0
) -> None:
    """Rewrite records, recompute every hash after them (chain, tree, summaries), delete the checkpoints
    (those of `keep_before` records and more: the ones a rewrite would show on)."""
    store = open_store(url)
    try:
        with store._write():
            for seq, record in changes.items():
                store._execute(
                    "UPDATE decisions SET record = ?, verdict = ? WHERE seq = ?",
                    (canonical(record), record["verdict"], seq),
                )
                store._execute("DELETE FROM terms WHERE seq = ?", (seq,))
                for kind, value in index_terms(record):
                    store._execute(
                        "INSERT INTO terms (kind, value, seq) VALUES (?, ?, ?)", (kind, value, seq)
                    )
            if drop_after is not None:
                store._execute("DELETE FROM terms WHERE seq > ?", (drop_after,))
                store._execute("DELETE FROM decisions WHERE seq > ?", (drop_after,))
            rows = store._execute("SELECT seq, record FROM decisions ORDER BY seq")
            prev = GENESIS
            for seq, body in rows:
                digest = entry_hash(prev, bytes(body), int(seq))
                store._execute("UPDATE decisions SET prev = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
                prev = digest
            store._execute("UPDATE chain_head SET seq = ?, hash = ? WHERE chain = 'main'", (len(rows), prev))
            store._execute("DELETE FROM tree_nodes")
            store._build_tree()
            store._execute("DELETE FROM checkpoints WHERE seq >= ?", (keep_before,))
        store.rebuild_summaries()  # `log verify` checks them against the records: a forger redoes them too
    finally:
        store.close()


def record_at(url: str, seq: int) -> dict[str, Any]:
    store = open_store(url)
    try:
        entry = store.get(f"#{seq}")
        assert entry is not None
        return entry.record()
    finally:
        store.close()
