"""Evidence an auditor takes away: inclusion proofs and archives they verify offline.

Owns: the inclusion proof of one decision (the JSON `trustgate log prove`
prints, which `trustgate log verify-proof` checks) and the evidence archive of
a filtered set: `records.jsonl` (the `log export` lines), `records.csv`,
`checkpoint.txt` (the signed note every proof is under), `proofs/<id>.json`
(`file_stem`) and a README. Leaves out: filtering (`query.py`) and HTTP.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trustgate.decisions import merkle
from trustgate.decisions.chain import Checkpoint, Entry
from trustgate.decisions.log import Store
from trustgate.decisions.record import MALFORMED_RECORD
from trustgate.errors import DecisionLogError
from trustgate.report._common import spreadsheet_cell
from trustgate.ui.explain import UNREADABLE, summary

MAX_ARCHIVE_RECORDS = 10_000  # one archive; more: narrow the filters or use `trustgate log export`
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def export_line(entry: Entry) -> str:
    """`{"hash", "prev", "record", "seq"}` in RFC 8785 form, as `trustgate log export` writes it."""
    return (
        f'{{"hash":"{entry.hash}","prev":"{entry.prev}","record":'
        + entry.body.decode()
        + f',"seq":{entry.seq}}}'
    )


def safe_name(name: str) -> str | None:
    """`name` when it is a plain file name (letters, digits, `.`, `_`, `-`; no path), else None."""
    return name if _NAME.fullmatch(name) and ".." not in name else None


def file_stem(entry: Entry) -> str:
    """A file name (without extension) for the entry: its id when that is a UUID, else `seq-N`.

    The id column is the database's, which whoever runs it can edit: an id
    of `../../x` or `x"; filename="evil.html` must name no path in a zip
    and no parameter in a Content-Disposition header.
    """
    return entry.id if _UUID.fullmatch(entry.id) else f"seq-{entry.seq}"


def proof(store: Store, entry: Entry, checkpoint: Checkpoint) -> dict[str, Any]:
    """The inclusion proof of `entry` under `checkpoint` (call inside `store.snapshot()`).

    Raises:
        DecisionLogError: the store cannot be read, or its tree does not match the checkpoint.
        ValueError, TypeError: the stored record is malformed (`MALFORMED_RECORD`).
    """
    hashes = store.inclusion_proof(entry.seq - 1, checkpoint.seq)
    head = checkpoint.tree_head()
    if head is None or head.root != store.root(checkpoint.seq):
        raise DecisionLogError(
            f"the stored Merkle tree does not match the checkpoint at #{checkpoint.seq}",
            hint="run `trustgate log verify`",
        )
    return {
        "index": entry.seq - 1,
        "treeSize": checkpoint.seq,
        "leafHash": merkle.leaf_hash(entry.body).hex(),
        "hashes": [h.hex() for h in hashes],
        "checkpoint": checkpoint.note,
        "record": entry.record(),
    }


def proof_for(store: Store, entry: Entry) -> dict[str, Any] | None:
    """The proof under the newest signed checkpoint covering `entry`; None when none covers it yet."""
    with store.snapshot():
        tree = store.latest_tree_checkpoint()
        if tree is None or tree.seq < entry.seq:
            return None
        _within_log(store, tree)
        return proof(store, entry, tree)


def _within_log(store: Store, checkpoint: Checkpoint) -> None:
    """Refuse a checkpoint that claims more records than the log's tree holds, with the reason.

    Raises:
        DecisionLogError: the checkpoint is beyond the tree (an altered row, or a truncated log).
    """
    size = store.tree_size()
    if checkpoint.seq > size:
        raise DecisionLogError(
            f"the newest signed checkpoint claims {checkpoint.seq} records, but the log's tree holds {size}",
            hint="a checkpoint row was altered or the log truncated: run `trustgate log verify`",
        )


MALFORMED_KEY = "(malformed public key in the checkpoint row: run `trustgate log verify`)"


def vkey_of(checkpoint: Checkpoint) -> str:
    """The verifier key (vkey) of the key that signed `checkpoint`, for the auditor to compare.

    MALFORMED_KEY when the stored key is not one (not base64, not 32 bytes).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from trustgate.decisions.note import NoteVerifier

    try:
        raw = base64.b64decode(checkpoint.public_key, validate=True)
        return NoteVerifier.ed25519(Ed25519PublicKey.from_public_bytes(raw)).vkey()
    except ValueError:  # not base64, or not 32 bytes: an altered row, flagged rather than a failed page
        return MALFORMED_KEY


CSV_FIELDS = ["seq", "id", "time", "gate", "verdict", "namespaces", "objects", "commit", "rules", "actors"]
CSV_FIELDS += ["exceptions"]


@dataclass(frozen=True, slots=True)
class Archive:
    data: bytes
    records: int
    proven: int  # records with a proof in the archive (the rest are newer than the checkpoint)


def build_archive(store: Store, entries: Iterable[Entry], *, description: str) -> Archive:
    """A zip of the entries (oldest first), the latest signed checkpoint and a proof of each covered entry.

    Call inside `store.snapshot()`, so the records, checkpoint and proofs agree.

    Raises:
        DecisionLogError: the store cannot be read, or its tree does not match the checkpoint.
    """
    checkpoint = store.latest_tree_checkpoint()
    if checkpoint is not None:
        _within_log(store, checkpoint)
    jsonl = io.StringIO()
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    buffer = io.BytesIO()
    records = proven = 0
    uncovered: list[str] = []
    malformed: list[str] = []  # records that are not decision records: in the CSV, flagged, without a proof
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            records += 1
            line: str | None
            body: str | None
            try:
                row = summary(entry)
                line = export_line(entry)
                body = (
                    json.dumps(proof(store, entry, checkpoint), indent=2) + "\n"
                    if checkpoint is not None and entry.seq <= checkpoint.seq
                    else None
                )
            except MALFORMED_RECORD as e:  # flagged in the CSV and the README; the others go on
                malformed.append(f"#{entry.seq} {entry.id}: {e}")
                row = {"seq": entry.seq, "id": entry.id, "time": entry.time, "objects": UNREADABLE}
                line = body = None
            writer.writerow(
                {
                    k: v if k == "seq" else spreadsheet_cell(" ".join(v) if isinstance(v, list) else v)
                    for k, v in row.items()
                    if k in CSV_FIELDS
                }
            )
            if line is not None:
                jsonl.write(line + "\n")
            if body is not None:
                archive.writestr(f"proofs/{file_stem(entry)}.json", body)
                proven += 1
            elif line is not None:
                uncovered.append(entry.id)
        archive.writestr("records.jsonl", jsonl.getvalue())
        archive.writestr("records.csv", table.getvalue())
        if checkpoint is not None:
            archive.writestr("checkpoint.txt", checkpoint.note)
            archive.writestr("signer.vkey", vkey_of(checkpoint) + "\n")
        archive.writestr(
            "README.txt", _readme(description, records, proven, checkpoint, uncovered, malformed)
        )
    return Archive(buffer.getvalue(), records, proven)


def _readme(
    description: str,
    records: int,
    proven: int,
    checkpoint: Checkpoint | None,
    uncovered: list[str],
    malformed: list[str],
) -> str:
    lines = [
        "trustgate decision log evidence",
        "",
        f"Decisions: {description}",
        f"Records: {records} (records.jsonl: `trustgate log export` lines; records.csv: a summary)",
        "records.csv: a cell that starts with ' had that quote added, so that a spreadsheet shows",
        "it as text rather than running it as a formula: drop the quote to get the value.",
    ]
    if checkpoint is not None:
        lines += [
            f"Checkpoint: checkpoint.txt, the signed tree head of the first {checkpoint.seq} records "
            f"({checkpoint.time}, signed by {checkpoint.key_id})",
            f"Proofs: {proven} in proofs/, one per record the checkpoint covers",
            "",
            "Verify each proof offline with the log's verifier key, the one you hold (not signer.vkey,",
            "which is only what this log's checkpoint says; compare it with yours):",
            "",
            '  for p in proofs/*.json; do trustgate log verify-proof "$p" --verifier-key "$KEY"; done',
        ]
    else:
        lines.append(
            "No signed tree checkpoint yet: no record can be proven (`trustgate log checkpoint --key`)."
        )
    if uncovered and checkpoint is not None:
        lines += ["", f"Newer than the checkpoint, not yet provable ({len(uncovered)}):", *uncovered]
    if malformed:
        lines += [
            "",
            f"MALFORMED: not decision records, altered or damaged ({len(malformed)}; no proof; "
            "run `trustgate log verify`):",
            *malformed,
        ]
    return "\n".join(lines) + "\n"
