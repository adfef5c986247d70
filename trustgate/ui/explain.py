"""What a page shows of a record: one-line summaries and the explained decision (as `log show`).

Owns: turning a stored record (already redacted: the page shows nothing the
log does not hold) into plain values for the templates. Leaves out: HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustgate.decisions.chain import Entry, differing_columns
from trustgate.decisions.record import MALFORMED_RECORD, actors_of, unique

VERDICT_WORDS = {
    "allow": "allowed",
    "warn": "allowed, with warnings",
    "deny": "denied: a blocking finding",
    "error": "not allowed: something could not be evaluated",
}


def label(obj: Mapping[str, Any]) -> str:
    return "/".join(str(x) for x in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if x)


def summary(entry: Entry) -> dict[str, Any]:
    """The row of a list: subject, namespaces, commit, rules and actors.

    Every value is the record's (which its hash covers), not the indexed
    columns the filters select by; `differs` names the columns that
    disagree with the record, for the page to flag.
    """
    record = entry.record()
    subject = record.get("subject") or {}
    objects = subject.get("objects") or []
    labels = [label(o) for o in objects]
    rules = unique(
        str(f.get("rule")) for f in record.get("findings") or () if f.get("severity") in ("error", "warning")
    )
    return {
        "seq": entry.seq,
        "id": str(record.get("id")),
        "time": str(record.get("time"))[:19] + "Z",
        "gate": str(record.get("gate")),
        "verdict": str(record.get("verdict")),
        "objects": (labels[0] + (f" +{len(labels) - 1}" if len(labels) > 1 else "")) if labels else "",
        "namespaces": unique(str(o["namespace"]) for o in objects if o.get("namespace")),
        "commit": str(subject.get("commit") or ""),
        "rules": rules,
        "actors": actors_of(record),
        "exceptions": [str(e.get("name")) for e in record.get("exceptions") or ()],
        "differs": differing_columns(entry, record),
    }


def explain(entry: Entry) -> dict[str, Any]:
    """Everything `log show` says about a decision, as values: who, what, images, findings, exceptions."""
    r = entry.record()
    subject = r.get("subject") or {}
    objects = subject.get("objects") or []
    findings = []
    for f in r.get("findings") or []:
        index = f.get("object")
        target = objects[index] if isinstance(index, int) and 0 <= index < len(objects) else {}
        findings.append(
            {
                **f,
                "target": label(target),
                "file": target.get("file"),
                "line": target.get("line"),
            }
        )
    images = []
    for image in subject.get("images") or []:
        details = image.get("details") or {}
        images.append(
            {
                "reference": image.get("reference"),
                "digest": image.get("digest"),
                "source": image.get("source"),
                "signatures": details.get("signatures") or [],
                "attestations": details.get("attestations") or [],
                "problems": details.get("problems") or [],
            }
        )
    actor = r.get("actor") or {}
    presync = subject.get("presync") or {}
    return {
        "record": r,
        "verdict_words": VERDICT_WORDS.get(str(r.get("verdict")), ""),
        "duration_ms": int(r.get("durationUs") or 0) / 1000,
        "user": actor.get("user"),
        "git": actor.get("git") or {},
        "ci": actor.get("ci"),
        "subject": {
            k: subject[k]
            for k in ("repository", "commit", "ref", "tree", "operation", "uid")
            if subject.get(k)
        },
        "objects": [{**o, "label": label(o) or "(unreadable)"} for o in objects],
        "images": images,
        "findings": findings,
        "exceptions": r.get("exceptions") or [],
        "presync": presync,
        "notes": r.get("notes") or [],
    }


UNREADABLE = "(malformed record: run `trustgate log verify`)"


def unreadable(entry: Entry) -> str | None:
    """Why the entry's stored record cannot be shown as a decision record (None when it can).

    Not a JSON object with an id (`Entry.malformed`), or one whose fields
    are not of a decision record's types (`MALFORMED_RECORD` reading it): an
    altered row. The pages flag such a record and never vouch for it.
    """
    reason = entry.malformed()
    if reason is not None:
        return reason
    try:
        summary(entry)
        explain(entry)
    except MALFORMED_RECORD as e:
        return str(e) or type(e).__name__
    return None


def list_row(entry: Entry) -> dict[str, Any]:
    """`summary(entry)`, or for a malformed stored record (an altered row) a row flagged `malformed`.

    One bad row must not hide the list: the others are shown, this one says what it is. Its time,
    id, gate and verdict are then the indexed columns (there is no record to read them from), which
    the page shows as the malformed row's, never as a record's.
    """
    reason = entry.malformed()
    if reason is None:
        try:
            return {**summary(entry), "malformed": ""}
        except MALFORMED_RECORD as e:
            reason = str(e) or type(e).__name__
    return {
        "seq": entry.seq,
        "id": entry.id,
        "time": entry.time[:19] + "Z",
        "gate": entry.gate,
        "verdict": entry.verdict,
        "objects": UNREADABLE,
        "namespaces": [],
        "commit": "",
        "rules": [],
        "actors": [],
        "exceptions": [],
        "differs": [],
        "malformed": reason,
    }
