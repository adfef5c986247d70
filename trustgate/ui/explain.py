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
    """Everything `log show` says about a decision, as values: who, what, images, findings, exceptions.

    Raises:
        TypeError: a field the page reads is not of a decision record's type (an altered row), as
            `MALFORMED_RECORD` names; `unreadable` turns it into the flagged page, never a 500.
    """
    r = entry.record()
    subject = _shaped(r.get("subject"), dict, "subject") or {}
    objects = _list_of(subject.get("objects"), dict, "subject.objects")
    for o in objects:
        _shaped(o.get("redacted"), list, "subject.objects[].redacted")
    findings = []
    for f in _list_of(r.get("findings"), dict, "findings"):
        index = f.get("object")
        target = objects[index] if isinstance(index, int) and 0 <= index < len(objects) else {}
        _shaped(f.get("exception"), dict, "findings[].exception")
        findings.append(
            {
                **f,
                "target": label(target),
                "file": target.get("file"),
                "line": target.get("line"),
            }
        )
    images = []
    for image in _list_of(subject.get("images"), dict, "subject.images"):
        details = _shaped(image.get("details"), dict, "subject.images[].details") or {}
        images.append(
            {
                "reference": image.get("reference"),
                "digest": image.get("digest"),
                "source": image.get("source"),
                "signatures": _list_of(details.get("signatures"), dict, "signatures"),
                "attestations": _list_of(details.get("attestations"), dict, "attestations"),
                "problems": _list_of(details.get("problems"), dict, "problems"),
            }
        )
    actor = _shaped(r.get("actor"), dict, "actor") or {}
    user = _shaped(actor.get("user"), dict, "actor.user")
    if user:
        _shaped(user.get("groups"), list, "actor.user.groups")
    git = _shaped(actor.get("git"), dict, "actor.git") or {}
    for role in ("author", "committer", "signer"):
        _shaped(git.get(role), dict, f"actor.git.{role}")
    presync = _shaped(subject.get("presync"), dict, "subject.presync") or {}
    for commit in _list_of(presync.get("commits"), dict, "subject.presync.commits"):
        _shaped(commit.get("sha"), str, "subject.presync.commits[].sha")
        for role in ("author", "committer", "signer"):
            _shaped(commit.get(role), dict, f"subject.presync.commits[].{role}")
    return {
        "record": r,
        "verdict_words": VERDICT_WORDS.get(str(r.get("verdict")), ""),
        "duration_ms": int(r.get("durationUs") or 0) / 1000,  # Infinity: OverflowError
        "user": user,
        "git": git,
        "ci": _shaped(actor.get("ci"), dict, "actor.ci"),
        "subject": {
            k: subject[k]
            for k in ("repository", "commit", "ref", "tree", "operation", "uid")
            if subject.get(k)
        },
        "objects": [{**o, "label": label(o) or "(unreadable)"} for o in objects],
        "images": images,
        "findings": findings,
        "exceptions": _list_of(r.get("exceptions"), dict, "exceptions"),
        "presync": presync,
        "notes": r.get("notes") or [],
    }


def _shaped(value: Any, kind: type, field: str) -> Any:
    """`value` when it is empty (absent) or a `kind`, as the page reads it.

    Raises:
        TypeError: it is something else (an altered row).
    """
    if value and not isinstance(value, kind):
        raise TypeError(f"{field} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def _list_of(value: Any, kind: type, field: str) -> list[Any]:
    """`value`, a list (empty when absent) of `kind` items, as the page reads it.

    Raises:
        TypeError: it is not a list of them (an altered row).
    """
    items = _shaped(value, list, field) or []
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"{field}[] holds a {type(item).__name__}, not a {kind.__name__}")
    return list(items)


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
