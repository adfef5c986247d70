"""The UI and summaries that lag the log: an older writer's decisions are listed, and the pages say so.

A writer of an older trustgate (schema 2) that keeps appending after another
pod migrated the log to schema 3 leaves its records out of the summaries.
The UI must not select records through them then: it reads the records,
says so, and its verification names the tables; `log rebuild-summaries`
brings them back.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from support.ui_log import build_log, run, serve_ui

from trustgate.decisions.canonical import timestamp, uuid7
from trustgate.decisions.log import open_store, prepare


def _older_writer_appends(url: str, key: str) -> str:
    """A copy of decision `key` (new id, now) appended without the summaries, as a schema-2 writer does."""
    store = open_store(url)
    try:
        entry = store.get(key)
        assert entry is not None
        record = {**entry.record(), "id": uuid7(), "time": timestamp()}
        store._save_summary = lambda summary: None  # type: ignore[method-assign]  # knows nothing of them
        store.append([prepare(record)])
    finally:
        store.close()
    return str(record["id"])


def _verify(base: str) -> str:
    job = httpx.post(base + "/integrity/verify", timeout=30).headers["location"]
    deadline = time.monotonic() + 30
    while "running" in (page := httpx.get(base + job, timeout=30).text) and time.monotonic() < deadline:
        time.sleep(0.2)
    return page


def test_an_older_writers_decisions_are_listed_and_the_pages_say_why(tmp_path: Path) -> None:
    log = build_log(tmp_path)
    copied = _older_writer_appends(log.url, log.ids["legacy"])
    today = timestamp()[:10]
    with serve_ui(log.url) as server:
        listed = httpx.get(f"{server.base}/decisions?since={today}", timeout=30).text
        assert copied in listed and 'id="summaries-behind"' in listed
        applied = httpx.get(f"{server.base}/decisions?exception=legacy-root", timeout=30).text
        assert copied in applied and log.ids["legacy"] in applied
        overview = httpx.get(f"{server.base}/overview", timeout=30).text
        assert 'id="summaries-behind"' in overview
        assert re.search(r"<p>6 decisions", overview)  # counted from the records, the copy included
        assert "behind the log" in httpx.get(f"{server.base}/integrity", timeout=30).text
        # An exception filter: its index lacks the copy too, so the counts come from the records.
        overview = httpx.get(f"{server.base}/overview?exception=legacy-root", timeout=30).text
        assert re.search(r"<p>2 decisions", overview)
        report = httpx.get(f"{server.base}/report?exception=legacy-root", timeout=30).text
        assert "<th>matching</th><td>2</td>" in report and copied in report
        page = _verify(server.base)
        assert 'id="state">not-intact<' in page and "the summary table daily_seqs disagrees" in page
        assert "<strong>disagree with the records</strong>" in page

        code, _, err = run("log", "rebuild-summaries", "--store", log.url)
        assert code == 0, err
        listed = httpx.get(f"{server.base}/decisions?since={today}", timeout=30).text
        assert copied in listed and 'id="summaries-behind"' not in listed
        assert (
            "count as many decisions as the log holds"
            in httpx.get(f"{server.base}/integrity", timeout=30).text
        )
        page = _verify(server.base)
        assert 'id="state">intact<' in page and 'id="summaries-verified">verified' in page
