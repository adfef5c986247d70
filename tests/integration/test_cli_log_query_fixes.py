"""`log query` says when --limit cut its output; date-only `--until` forms take in the whole day (CLI
and UI); `--image` finds an image however the gate recorded its reference; a record of odd shape is
the flagged "malformed" page and `log show` text, never a 500 or a traceback.

The logs are written by real `trustgate check` runs; edits are an operator's change of a copy.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.ui_log import Log, build_log, copy_of, run, serve_ui


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("cli-query-fixes"))


# -- --limit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_limit_that_cuts_the_output_says_so_on_stderr(log: Log, fmt: str) -> None:
    code, out, err = run("log", "query", "--store", log.url, "--format", fmt, "--limit", "2")
    assert code == 0
    assert "more decisions match" in err and "--limit 0" in err
    if fmt == "json":
        assert len(json.loads(out)) == 2  # stdout stays what a program reads
    else:
        assert len(out.splitlines()) == 3  # the header and two rows
    for limit in ("5", "0"):  # all five decisions shown: nothing to say
        code, out, err = run("log", "query", "--store", log.url, "--format", fmt, "--limit", limit)
        assert code == 0 and "more decisions match" not in err
    code, out, _ = run("log", "query", "--store", log.url, "--format", "json", "--limit", "0")
    assert len(json.loads(out)) == 5


# -- --until in ISO basic and week forms --------------------------------------------------------


def _today(log: Log) -> dt.date:
    code, out, _ = run("log", "query", "--store", log.url, "--format", "json", "--limit", "1")
    assert code == 0
    return dt.date.fromisoformat(json.loads(out)[0]["record"]["time"][:10])


def _forms(day: dt.date) -> list[str]:
    year, week, weekday = day.isocalendar()
    return [
        day.isoformat(),
        day.strftime("%Y%m%d"),
        f"{year}-W{week:02}-{weekday}",
        f"{year}W{week:02}{weekday}",
    ]


def test_until_a_date_in_any_iso_form_takes_in_that_day(log: Log) -> None:
    for form in _forms(_today(log)):
        code, out, err = run("log", "query", "--store", log.url, "--until", form, "--format", "json")
        assert code == 0, err
        assert len(json.loads(out)) == 5, form
    code, _, err = run("log", "query", "--store", log.url, "--until", "2026-W50")
    assert code == 3 and "a week, not a day" in err


def test_the_ui_reads_until_in_any_iso_form_and_refuses_a_week(log: Log) -> None:
    day = _today(log)
    with serve_ui(log.url) as server:
        for form in _forms(day):
            params = {"since": (day - dt.timedelta(days=3)).isoformat(), "until": form}
            listed = httpx.get(server.base + "/decisions", params=params, timeout=30)
            assert listed.status_code == 200 and listed.text.count('<tr class="row"') == 5, form
            overview = httpx.get(server.base + "/overview", params=params, timeout=30)
            assert overview.status_code == 200 and "5 decisions" in overview.text, form
        refused = httpx.get(server.base + "/decisions", params={"until": "2026W50"}, timeout=30)
        assert refused.status_code == 400 and "a week, not a day" in refused.text


# -- --image as the image rules read it -------------------------------------------------------


def test_an_image_is_found_however_the_gate_recorded_it(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path)
    root = tmp_path / "gate"
    shutil.copytree(log.config.parent, root, ignore=shutil.ignore_patterns("decisions.db*"))
    (root / "trustgate.yaml").write_text(log.config.read_text().replace(log.url, url))
    spellings = ["nginx:1.25", "docker.io/library/nginx:1.25", "index.docker.io/library/nginx:1.25"]
    for n, image in enumerate(spellings):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"web-{n}", "namespace": "prod"},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }
        (root / f"pod-{n}.json").write_text(json.dumps(pod))
        code, _, err = run(
            "check", "-c", str(root / "trustgate.yaml"), "--no-builtin", "--no-schemas", "-p",
            str(root / "policy"), str(root / f"pod-{n}.json"),
        )  # fmt: skip
        assert code == 0, err
    for wanted in [*spellings, "docker.io/library/nginx*", "nginx*", "nginx:*"]:
        code, out, _ = run("log", "query", "--store", url, "--image", wanted, "--format", "json")
        assert code == 0
        assert sorted(r["record"]["subject"]["images"][0]["reference"] for r in json.loads(out)) == sorted(
            spellings
        ), wanted
    with serve_ui(url) as server:
        listed = httpx.get(server.base + "/decisions", params={"image": "nginx:1.25"}, timeout=30)
        assert listed.status_code == 200 and listed.text.count('<tr class="row"') == 3
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 0, out  # the index is as it always was: as written


def test_a_bare_prefix_finds_a_registry_written_in_upper_case(log: Log, tmp_path: Path) -> None:
    """`--image 'mirror*'` (no `/`) missed `MIRROR.INTERNAL:5000/app`, the same registry's."""
    url = copy_of(log, tmp_path)
    root = tmp_path / "gate"
    shutil.copytree(log.config.parent, root, ignore=shutil.ignore_patterns("decisions.db*"))
    (root / "trustgate.yaml").write_text(log.config.read_text().replace(log.url, url))
    spellings = ["MIRROR.INTERNAL:5000/app:1", "mirror.internal:5000/app:1", "Mirror.Internal:5000/db:2"]
    for n, image in enumerate(spellings):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"app-{n}", "namespace": "prod"},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }
        (root / f"pod-{n}.json").write_text(json.dumps(pod))
        code, _, err = run(
            "check", "-c", str(root / "trustgate.yaml"), "--no-builtin", "--no-schemas", "-p",
            str(root / "policy"), str(root / f"pod-{n}.json"),
        )  # fmt: skip
        assert code == 0, err
    for wanted, expected in [
        ("mirror*", spellings),
        ("MIRROR.internal*", spellings),
        ("mirror.internal:5000/*", spellings),
        ("mirror.internal:5000/app:1", spellings[:2]),
    ]:
        code, out, err = run("log", "query", "--store", url, "--image", wanted, "--format", "json")
        assert code == 0, err
        found = [r["record"]["subject"]["images"][0]["reference"] for r in json.loads(out)]
        assert sorted(found) == sorted(expected), wanted
    code, out, _ = run("log", "verify", "--store", url)
    assert code == 0, out


# -- records of odd shapes --------------------------------------------------------------------


def _edit(record: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> bytes:
    edited = copy.deepcopy(record)
    change(edited)
    return json.dumps(edited, separators=(",", ":"), sort_keys=True, allow_nan=True).encode()


ODD_SHAPES: dict[str, Callable[[dict[str, Any]], None]] = {
    "groups an int": lambda r: r.update(actor={"user": {"username": "u", "groups": 5}}),
    "redacted an int": lambda r: r["subject"]["objects"][0].update(redacted=3),
    "signatures a string": lambda r: r["subject"].update(
        images=[{"reference": "a", "details": {"signatures": "ab"}}]
    ),
    "signatures of strings": lambda r: r["subject"].update(
        images=[{"reference": "a", "details": {"signatures": ["ab"]}}]
    ),
    "presync a string": lambda r: r["subject"].update(presync="x"),
    "a commit author a string": lambda r: r["subject"].update(
        presync={"commits": [{"sha": "a", "author": "x"}]}
    ),
    "a commit sha an int": lambda r: r["subject"].update(presync={"commits": [{"sha": 5}]}),
    "durationUs Infinity": lambda r: r.update(durationUs=float("inf")),
}


@pytest.mark.parametrize("shape", list(ODD_SHAPES))
def test_a_record_of_an_odd_shape_is_flagged_never_a_500(log: Log, tmp_path: Path, shape: str) -> None:
    url = copy_of(log, tmp_path)
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        base = json.loads(db.execute("SELECT record FROM decisions WHERE seq = 2").fetchone()[0])
        db.execute("UPDATE decisions SET record = ? WHERE seq = 2", (_edit(base, ODD_SHAPES[shape]),))
        db.commit()
    with serve_ui(url) as server:
        page = httpx.get(server.base + "/decisions/%232", timeout=30)
        assert page.status_code == 200 and "not a decision record" in page.text, page.text[:2000]
        proof = httpx.get(server.base + "/decisions/%232/proof", timeout=30)
        assert proof.status_code == 409 and "malformed" in proof.text
        assert httpx.get(server.base + "/decisions", timeout=30).status_code == 200
    code, out, err = run("log", "show", "--store", url, "#2")  # no traceback; what it reads, flagged
    assert code == 0 and out.startswith("decision "), err
    if "presync" not in shape and "commit" not in shape:  # `log show` does not read the pre-sync range
        assert "MALFORMED: the stored record is not a decision record" in out
