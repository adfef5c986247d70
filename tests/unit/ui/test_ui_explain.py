"""A decision page says what `log show` says: admission user, signers, tlog entries, pre-sync commits."""

from __future__ import annotations

import json
from dataclasses import astuple
from typing import Any

import jinja2
import pytest

from trustgate.decisions.canonical import canonical
from trustgate.decisions.chain import Entry
from trustgate.decisions.vouch import Coverage
from trustgate.ui.app import HERE
from trustgate.ui.evidence import file_stem
from trustgate.ui.explain import UNREADABLE, explain, list_row, summary, unreadable


def _entry(record: dict[str, Any], seq: int = 3) -> Entry:
    return Entry(
        seq,
        record["id"],
        record["time"],
        record["gate"],
        record["verdict"],
        canonical(record),
        "0" * 64,
        "1" * 64,
    )


RECORD: dict[str, Any] = {
    "id": "01a2-test",
    "time": "2026-01-05T10:00:00.000000Z",
    "gate": "admission",
    "mode": "enforce",
    "verdict": "deny",
    "exitCode": 1,
    "actor": {"user": {"username": "alice@example.com", "groups": ["devs"]}},
    "subject": {
        "operation": "CREATE",
        "objects": [
            {"kind": "Pod", "namespace": "shop", "name": "web", "file": "-", "line": 1, "status": "failed"}
        ],
        "images": [
            {
                "reference": "registry.example.com/web:1@sha256:" + "a" * 64,
                "digest": "sha256:" + "a" * 64,
                "source": "verified",
                "details": {
                    "signatures": [
                        {
                            "subject": "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v1",
                            "issuer": "https://token.actions.githubusercontent.com",
                            "logIndex": 4242,
                            "integratedTime": "2026-01-01T00:00:00Z",
                            "authority": "keyless",
                        }
                    ]
                },
            }
        ],
        "presync": {
            "scope": "prod",
            "commits": [
                {
                    "sha": "b" * 40,
                    "author": {"email": "bob@example.com"},
                    "committer": {"email": "bob@example.com"},
                    "signer": {"identity": "bob@example.com", "status": "G"},
                }
            ],
        },
    },
    "findings": [
        {
            "rule": "pss-baseline-privileged",
            "severity": "error",
            "message": 'container "app" runs privileged',
            "path": "spec.containers[0].securityContext.privileged",
            "object": 0,
            "exception": {
                "name": "legacy",
                "owner": "ops@example.com",
                "expires": "2026-02-01",
                "expired": True,
            },
        }
    ],
    "exceptions": [],
    "notes": ["<script>alert(1)</script>"],
}


def test_the_page_names_user_signer_tlog_entry_presync_commits_and_expired_exceptions() -> None:
    entry = _entry(RECORD)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )
    html = env.get_template("decision.html").render(
        entry=entry,
        d=explain(entry),
        c=Coverage(entry, None, [], [], None),
        stem="seq-3",
        raw=json.dumps(RECORD),
        version="0",
    )
    for expected in (
        "alice@example.com (groups: devs)",
        "release.yml@refs/tags/v1",
        "transparency log entry 4242",
        "bob@example.com (G)",
        "spec.containers[0].securityContext.privileged",
        "EXPIRED, not applied",
        "not yet covered by a signed tree checkpoint",
        "Not yet covered by a signed tree checkpoint: no proof yet.",
    ):
        assert expected in html, expected
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_summary_is_the_row_of_log_query() -> None:
    row = summary(_entry(RECORD))
    assert row["objects"] == "Pod/shop/web" and row["rules"] == ["pss-baseline-privileged"]
    assert row["actors"] == ["alice@example.com"] and row["time"] == "2026-01-05T10:00:00Z"
    assert row["differs"] == []


def test_summary_shows_the_records_values_and_names_the_columns_that_disagree() -> None:
    entry = _entry(RECORD)
    forged = Entry(entry.seq, entry.id, "2030-01-01T00:00:00.000000Z", "ci", "allow", *astuple(entry)[5:])
    row = summary(forged)
    assert (row["time"], row["gate"], row["verdict"]) == ("2026-01-05T10:00:00Z", "admission", "deny")
    assert row["differs"] == ["time", "gate", "verdict"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\x00", "not JSON"),
        (b"[1,2]", "a JSON list, not an object"),
        (b'{"subject":"x"}', "a JSON object without an id"),
    ],
)
def test_a_record_that_is_no_decision_record_is_a_flagged_row_and_never_named_by_its_id(
    body: bytes, reason: str
) -> None:
    entry = _entry(RECORD)
    altered = Entry(entry.seq, "../../x", entry.time, entry.gate, entry.verdict, body, entry.prev, entry.hash)
    assert altered.malformed() is not None and reason in str(altered.malformed())
    assert unreadable(altered) == altered.malformed()
    row = list_row(altered)
    assert row["malformed"] and row["objects"] == UNREADABLE and row["differs"] == []
    assert file_stem(altered) == "seq-3"


def test_a_record_of_another_shape_with_an_id_is_flagged_too() -> None:
    entry = _entry({**RECORD, "subject": "x"})
    assert entry.malformed() == "subject is a JSON string, not a JSON object"  # the one shared check
    assert unreadable(entry) == entry.malformed() == list_row(entry)["malformed"]


def test_proofs_are_named_by_the_records_id_when_it_is_a_uuid() -> None:
    uuid = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    entry = _entry({**RECORD, "id": uuid})
    assert file_stem(entry) == uuid and unreadable(entry) is None and list_row(entry)["malformed"] == ""
    swapped = Entry(entry.seq, 'x"; filename="evil.html', *astuple(entry)[2:])
    assert file_stem(swapped) == uuid  # the record's id, not the column
    assert file_stem(_entry(RECORD)) == "seq-3"  # "01a2-test" is not a UUID
