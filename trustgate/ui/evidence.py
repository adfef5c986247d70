"""Evidence an auditor takes away: inclusion proofs and archives they verify offline.

Owns: the evidence archive of a filtered set: `records.jsonl` (the `log
export` lines), `records.csv`, `checkpoint.txt` (the signed note every proof
is under), `proofs/<id>.json` (the JSON `trustgate log prove` prints, which
`trustgate log verify-proof` checks; named by `file_stem`) and a README.
Leaves out: filtering (`query.py`), HTTP, and which checkpoints and proofs
can be vouched for (`trustgate.decisions.vouch`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trustgate.decisions import vouch
from trustgate.decisions.chain import Entry
from trustgate.decisions.chain import export_line as chain_line
from trustgate.decisions.log import Store
from trustgate.decisions.record import MALFORMED_RECORD
from trustgate.report._common import spreadsheet_cell, visible_controls
from trustgate.ui.explain import list_row

MAX_ARCHIVE_RECORDS = 10_000  # one archive; more: narrow the filters or use `trustgate log export`
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def export_line(entry: Entry) -> str:
    """`{"hash", "prev", "record", "seq"}` in RFC 8785 form, as `trustgate log export` writes it.

    "hash" is recomputed from the line (`chain.export_line`), not the stored column, which no signature
    covers; the stored prev is encoded as a JSON string, never pasted in.
    """
    return chain_line(entry.prev, entry.body, entry.seq).decode()


def safe_name(name: str) -> str | None:
    """`name` when it is a plain file name (letters, digits, `.`, `_`, `-`; no path), else None."""
    return name if _NAME.fullmatch(name) and ".." not in name else None


def file_stem(entry: Entry) -> str:
    """A file name (without extension) for the entry: its record's id when that is a UUID, else `seq-N`.

    The record's id, not the id column (which no hash covers); and only a
    UUID, so that no id, however it was written, names a path in a zip
    (`../../x`) or a parameter in a Content-Disposition header
    (`x"; filename="evil.html`).
    """
    try:
        said = entry.record().get("id")
    except MALFORMED_RECORD:
        said = None
    return said if isinstance(said, str) and _UUID.fullmatch(said) else f"seq-{entry.seq}"


CSV_FIELDS = ["seq", "id", "time", "gate", "verdict", "namespaces", "objects", "commit", "rules", "actors"]
CSV_FIELDS += ["exceptions", "differs"]  # differs: indexed columns that are not what the record says


@dataclass(frozen=True, slots=True)
class Archive:
    data: bytes
    records: int
    proven: int  # records with a proof in the archive (the rest: newer than the checkpoint, or not proven)


def build_archive(
    store: Store, entries: Iterable[Entry], *, description: str, pinned: Ed25519PublicKey | None = None
) -> Archive:
    """A zip of the entries (oldest first), the newest checkpoint that verifies and a proof of each it proves.

    The checkpoint's signatures must verify (with `pinned` when given), and
    each proof is checked before it goes in: a record that is not its leaf,
    or a tree that does not lead to the signed root, is listed as not proven;
    a malformed record (an altered row) is flagged in the CSV and the README,
    outside records.jsonl and without a proof.
    Call inside `store.snapshot()`, so the records, checkpoint and proofs agree.

    Raises:
        DecisionLogError: the store cannot be read, or lacks a tree node, or the checkpoint
            that verifies claims more records than the log's tree holds (`vouch.within_log`).
    """
    vouched, refused = vouch.newest_vouched(store, pinned=pinned)
    if vouched is not None:
        vouch.within_log(store, vouched)
    jsonl = io.StringIO()
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    buffer = io.BytesIO()
    records = proven = 0
    uncovered: list[str] = []
    not_proven: list[str] = []
    malformed: list[str] = []  # records that are not decision records: in the CSV, flagged, without a proof
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            records += 1
            row = list_row(entry)
            writer.writerow(
                {
                    k: v if k == "seq" else spreadsheet_cell(" ".join(v) if isinstance(v, list) else v)
                    for k, v in row.items()
                    if k in CSV_FIELDS
                }
            )
            if row["malformed"]:  # flagged in the CSV and the README; the others go on
                malformed.append(f"#{entry.seq} {visible_controls(entry.id, keep='')}: {row['malformed']}")
                continue
            jsonl.write(export_line(entry) + "\n")
            shown = visible_controls(row["id"], keep="")  # the README is plain text, lines of its own
            if vouched is None or entry.seq > vouched.checkpoint.seq:
                uncovered.append(shown)
                continue
            hashes, problem = vouch.inclusion(store, entry, vouched)
            coverage = vouch.Coverage(entry, vouched, [], hashes, problem)
            if problem is not None:
                not_proven.append(f"{shown}: {problem}")
                continue
            archive.writestr(f"proofs/{file_stem(entry)}.json", json.dumps(coverage.proof(), indent=2) + "\n")
            proven += 1
        archive.writestr("records.jsonl", jsonl.getvalue())
        archive.writestr("records.csv", table.getvalue())
        if vouched is not None:
            archive.writestr("checkpoint.txt", vouched.checkpoint.note)
            archive.writestr("signer.vkey", vouched.vkey + "\n")
        readme = _readme(description, records, proven, vouched, refused, uncovered, not_proven, malformed)
        archive.writestr("README.txt", readme)
    return Archive(buffer.getvalue(), records, proven)


def _readme(
    description: str,
    records: int,
    proven: int,
    vouched: vouch.Vouched | None,
    refused: list[vouch.Refused],
    uncovered: list[str],
    not_proven: list[str],
    malformed: list[str],
) -> str:
    lines = [
        "trustgate decision log evidence",
        "",
        f"Decisions: {description}",
        f"Records: {records} (records.jsonl: `trustgate log export` lines; records.csv: a summary, whose",
        "  differs column names indexed columns the record disagrees with: run `trustgate log verify`)",
        "records.csv: a cell that starts with ' had that quote added, so that a spreadsheet shows",
        "it as text rather than running it as a formula; each backslash of a value is doubled, and",
        "each control or invisible character is written \\xNN, \\uNNNN or \\UNNNNNNNN. To get a value",
        "back: drop the leading ', then read \\\\ as one backslash and each other escape as the",
        "character it names.",
    ]
    if vouched is not None:
        cp = vouched.checkpoint
        lines += [
            f"Checkpoint: checkpoint.txt, the signed tree head of the first {cp.seq} records "
            f"({cp.time}, signed by {vouched.key_id}, verified with {vouched.checked_with})",
            f"Proofs: {proven} in proofs/, one per record the checkpoint covers (each checked before it "
            "went in)",
            "",
            "Verify each proof offline with the log's verifier key, the one you hold (not signer.vkey,",
            "the key this checkpoint verified with; compare it with yours):",
            "",
            '  for p in proofs/*.json; do trustgate log verify-proof "$p" --verifier-key "$KEY"; done',
        ]
    else:
        lines.append(
            "No signed tree checkpoint that verifies: no record can be proven "
            "(`trustgate log checkpoint --key`)."
        )
    if refused:
        lines += ["", "NOT VERIFIED, not used (altered or made up in the database):"]
        lines += [f"  {visible_controls(r.describe(), keep='')}" for r in refused]
    if not_proven:
        lines += ["", f"NOT PROVEN, no proof included ({len(not_proven)}):", *not_proven]
    if uncovered and vouched is not None:
        lines += ["", f"Newer than the checkpoint, not yet provable ({len(uncovered)}):", *uncovered]
    if malformed:
        lines += [
            "",
            f"MALFORMED: not decision records, altered or damaged ({len(malformed)}; no proof; "
            "run `trustgate log verify`):",
            *malformed,
        ]
    # Each line one line, whatever the database held: a checkpoint's time or key name (which a DB
    # writer sets, and signs with a key of their own) must not add a line that passes for a verdict.
    return "\n".join(visible_controls(line, keep="") for line in lines) + "\n"
