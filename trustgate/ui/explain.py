"""What a page shows of a record: one-line summaries and the explained decision (as `log show`).

Owns: turning a stored record (already redacted: the page shows nothing the
log does not hold) into plain values for the templates. Leaves out: HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trustgate.decisions.chain import Checkpoint, Entry
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
    """The row of a list: subject, namespaces, commit, rules and actors."""
    record = entry.record()
    subject = record.get("subject") or {}
    objects = subject.get("objects") or []
    labels = [label(o) for o in objects]
    rules = unique(
        str(f.get("rule")) for f in record.get("findings") or () if f.get("severity") in ("error", "warning")
    )
    return {
        "seq": entry.seq,
        "id": entry.id,
        "time": entry.time[:19] + "Z",
        "gate": entry.gate,
        "verdict": entry.verdict,
        "objects": (labels[0] + (f" +{len(labels) - 1}" if len(labels) > 1 else "")) if labels else "",
        "namespaces": unique(str(o["namespace"]) for o in objects if o.get("namespace")),
        "commit": str(subject.get("commit") or ""),
        "rules": rules,
        "actors": actors_of(record),
        "exceptions": [str(e.get("name")) for e in record.get("exceptions") or ()],
    }


def covering(checkpoints: Sequence[Checkpoint], seq: int) -> Checkpoint | None:
    """The first checkpoint (not a prune anchor) that covers the entry at `seq`."""
    later = [c for c in checkpoints if c.seq >= seq and c.kind != "prune"]
    return min(later, key=lambda c: c.seq) if later else None


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


def list_row(entry: Entry) -> dict[str, Any]:
    """`summary(entry)`, or for a malformed stored record (an altered row) a row flagged `malformed`.

    One bad row must not hide the list: the others are shown, this one says what it is.
    """
    try:
        return {**summary(entry), "malformed": ""}
    except MALFORMED_RECORD as e:
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
            "malformed": str(e),
        }
