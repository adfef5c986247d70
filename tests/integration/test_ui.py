"""`trustgate ui` over HTTP: a real server on a log real gates wrote; bad input, access, proofs, evidence."""

from __future__ import annotations

import io
import json
import ssl
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from support.ui_log import TOKEN, Log, Server, build_log, run, serve_ui
from support.webhook import make_certs

from trustgate.cli.main import main


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("ui-log"))


@pytest.fixture(scope="module")
def server(log: Log) -> Iterator[Server]:
    with serve_ui(log.url) as running:
        yield running


@pytest.fixture(scope="module")
def secured(log: Log, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tokens = tmp_path_factory.mktemp("ui-tokens") / "tokens"
    tokens.write_text(f"# auditors\n{TOKEN}\n\nanother-test-only-token-0123456789\n")
    with serve_ui(log.url, "--token-file", str(tokens)) as running:
        yield running


def get(server: Server, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(server.base + path, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/decisions?verdict=maybe", "unknown verdict"),
        ("/decisions?gate=cd", "unknown gate"),
        ("/decisions?since=2026-02-30", "not a date or time"),
        ("/decisions?until=last-week", "not a date or time"),
        ("/decisions?before=" + "9" * 30, "out of range"),
        ("/decisions?after=" + "9" * 200, "whole number"),
        ("/decisions?limit=1000000", "between 1 and"),
        ("/decisions?page=2", "unknown parameter"),
        ("/decisions?commit=%27%3BDROP%20TABLE", "not a commit SHA"),
        ("/overview?since=tomorrow", "not a date or time"),
        ("/report?verdict=x", "unknown verdict"),
        ("/export?name=../../etc/passwd", "not a plain file name"),
        ("/export?name=..%2F..%2Fx.zip", "not a plain file name"),
        ("/export?name=.ssh", "not a plain file name"),
        ("/decisions/zz'%3Cscript%3E", "not a decision id"),
    ],
)
def test_bad_input_is_a_400_with_the_reason_and_no_traceback(server: Server, path: str, reason: str) -> None:
    response = get(server, path)
    assert response.status_code == 400, response.text
    assert reason in response.text and "Traceback" not in response.text and "<script>" not in response.text


def test_unknown_pages_and_decisions_are_404_and_nothing_writes(server: Server, log: Log) -> None:
    assert get(server, "/decisions/" + "0" * 32).status_code == 404
    assert get(server, "/../../etc/passwd").status_code == 404
    assert get(server, "/static/../app.py").status_code == 404
    for method in ("PUT", "DELETE", "PATCH"):
        assert httpx.request(method, server.base + "/decisions", timeout=30).status_code == 405
    assert httpx.post(server.base + "/decisions", timeout=30).status_code == 405


def test_security_headers_on_every_response(server: Server) -> None:
    for path in ("/overview", "/decisions?verdict=nope", "/static/style.css"):
        headers = get(server, path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # default-src 'none': no scripts
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert "server" not in headers


def test_pages_need_a_bearer_token_from_the_file(secured: Server) -> None:
    assert get(secured, "/decisions").status_code == 401
    assert get(secured, "/decisions").headers["www-authenticate"].startswith("Bearer")
    assert "<table" not in get(secured, "/decisions").text
    assert get(secured, "/static/style.css").status_code == 200  # the sign-in page's stylesheet
    assert get(secured, "/decisions/x/proof").status_code == 401
    assert get(secured, "/export").status_code == 401
    wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "8"}
    assert get(secured, "/decisions", headers=wrong).status_code == 401
    assert get(secured, "/decisions", headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    for token in (TOKEN, "another-test-only-token-0123456789"):
        assert get(secured, "/decisions", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_browser_signs_in_with_a_token_kept_in_an_httponly_cookie(secured: Server) -> None:
    refused = httpx.post(secured.base + "/login", data={"token": "wrong-but-long-enough-token"}, timeout=30)
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    cross = httpx.post(
        secured.base + "/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert cross.status_code == 403
    signed_in = httpx.post(secured.base + "/login", data={"token": TOKEN}, timeout=30)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    with httpx.Client(base_url=secured.base, cookies=signed_in.cookies, timeout=30) as client:
        assert client.get("/decisions").status_code == 200
    with httpx.Client(base_url=secured.base, cookies={"trustgate_ui": "forged-cookie-value-1234"}) as client:
        assert client.get("/decisions").status_code == 401
    evil = httpx.post(secured.base + "/logout", headers={"Origin": "https://evil.example"}, timeout=30)
    assert evil.status_code == 403
    signed_out = httpx.post(secured.base + "/logout", cookies=signed_in.cookies, timeout=30)
    assert signed_out.status_code == 303 and 'trustgate_ui=""' in signed_out.headers["set-cookie"]


def test_filters_list_what_log_query_finds(server: Server, log: Log) -> None:
    page = get(server, "/decisions?verdict=deny&namespace=shop").text
    assert log.ids["bad2"] in page and log.ids["bad"] not in page and log.ids["good"] not in page
    page = get(server, "/decisions?exception=legacy-root").text
    assert log.ids["legacy"] in page and log.ids["bad"] not in page
    page = get(server, "/decisions?rule=no-*&limit=1").text  # newest first, one a page
    assert log.ids["bad2"] in page and log.ids["bad"] not in page and 'rel="next"' in page
    older = page.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    page = get(server, older).text
    assert log.ids["bad"] in page and log.ids["bad2"] not in page and 'rel="prev"' in page


def test_a_decision_is_explained_as_log_show_does_with_secrets_redacted(server: Server, log: Log) -> None:
    page = get(server, f"/decisions/{log.ids['legacy']}").text
    for expected in (
        "run-as-root",
        "legacy pods run as root",
        "legacy-root",
        "platform@example.com",
        "vendor image runs as root until the upgrade",
        log.expires,
        "legacy.yaml:1",
        "registry.example.com/app:1.0",
    ):
        assert expected in page, expected
    # The shortest prefix no other record of the log shares: ids made in one process count up,
    # and earlier tests may have moved this process's id clock ahead, so a fixed length is not
    # always unique.
    good, others = log.ids["good"], [i for n, i in log.ids.items() if n != "good"]
    size = next(n for n in range(8, len(good) + 1) if not any(o.startswith(good[:n]) for o in others))
    page = get(server, f"/decisions/{good[:size]}").text
    assert "Secret/shop/db" in page and "hunter2" not in page


def test_the_proof_link_downloads_what_log_prove_prints(server: Server, log: Log, tmp_path: Path) -> None:
    response = get(server, f"/decisions/{log.ids['bad']}/proof")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    _, printed, _ = run("log", "prove", log.ids["bad"], "--store", log.url)
    assert response.json() == json.loads(printed)
    (tmp_path / "proof.json").write_bytes(response.content)
    code, out, _ = run("log", "verify-proof", str(tmp_path / "proof.json"), "--verifier-key", log.vkey)
    assert code == 0 and out.startswith("proven:")
    uncovered = get(server, f"/decisions/{log.ids['after']}/proof")
    assert uncovered.status_code == 409 and "not yet covered by a signed tree checkpoint" in uncovered.text


def test_the_evidence_archive_verifies_offline(server: Server, log: Log, tmp_path: Path) -> None:
    response = get(server, "/export?verdict=deny&name=q4-denials")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="q4-denials.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["record"]["id"] for x in lines) == sorted([log.ids["bad"], log.ids["bad2"]])
    assert "no-priv" in (tmp_path / "records.csv").read_text()
    proofs = sorted((tmp_path / "proofs").iterdir())
    assert len(proofs) == 2
    for proof in proofs:
        code, out, _ = run("log", "verify-proof", str(proof), "--verifier-key", log.vkey)
        assert code == 0 and out.startswith("proven:"), out
    assert (tmp_path / "signer.vkey").read_text().strip() == log.vkey


def test_the_verify_button_runs_log_verify_in_the_background(server: Server) -> None:
    response = httpx.post(server.base + "/integrity/verify", timeout=30)
    assert response.status_code == 303
    job = response.headers["location"]
    deadline = time.monotonic() + 30
    while "running" in (page := get(server, job).text) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert 'id="state">intact<' in page and "5 records" in page
    assert "intact" in get(server, "/integrity").text
    other_site = httpx.post(
        server.base + "/integrity/verify", headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert other_site.status_code == 403


def test_overview_and_report(server: Server, log: Log) -> None:
    page = get(server, "/overview").text
    assert "<svg" in page and "legacy-root" in page and "(within 30 days)" in page and "run-as-root" in page
    report = get(server, "/report?verdict=deny").text
    assert log.ids["bad"] in report and log.ids["good"] not in report and "verdict=deny" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "loopback address only"),
        (["--tls-cert", "x"], "does not exist"),
    ],
)
def test_plain_http_only_on_loopback(log: Log, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["ui", "--store", log.url, *args], catch_exceptions=False)
    assert result.exit_code == 2 and message in result.stderr


def test_a_short_token_or_missing_store_is_refused(log: Log, tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("short\n")
    result = CliRunner().invoke(
        main, ["ui", "--store", log.url, "--token-file", str(tmp_path / "tokens")], catch_exceptions=False
    )
    assert result.exit_code == 3 and "shorter than 16" in result.stderr
    result = CliRunner().invoke(
        main, ["ui", "--store", f"sqlite:///{tmp_path}/none.db"], catch_exceptions=False
    )
    assert result.exit_code == 3 and "no decision log here" in result.stderr


def test_the_store_is_decision_log_url_of_the_config_as_for_the_log_commands(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUSTGATE_DECISION_LOG", raising=False)
    with serve_ui(None, "-c", str(log.config)) as server:
        page = get(server, "/decisions?verdict=deny&namespace=shop").text
        assert log.ids["bad2"] in page and log.ids["good"] not in page
    missing = tmp_path / "trustgate.yaml"
    missing.write_text(log.config.read_text().replace(log.url, f"sqlite:///{tmp_path}/none.db"))
    result = CliRunner().invoke(main, ["ui", "-c", str(missing)], catch_exceptions=False)
    assert result.exit_code == 3 and "no decision log here" in result.stderr and "none.db" in result.stderr
    result = CliRunner().invoke(main, ["ui"], catch_exceptions=False)
    assert (
        result.exit_code == 3
        and "no decision log given" in result.stderr
        and "-c trustgate.yaml" in result.stderr
    )


def test_https_with_tokens_and_with_client_certificates(log: Log, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    trust = ssl.create_default_context(cafile=str(certs.ca))
    tls = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    with serve_ui(log.url, *tls, "--token-file", str(tmp_path / "tokens")) as server:
        assert server.base.startswith("https://")
        ok = httpx.get(server.base + "/decisions", verify=trust, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.headers["strict-transport-security"].startswith("max-age=")
        assert httpx.get(server.base + "/decisions", verify=trust).status_code == 401
    with serve_ui(log.url, *tls, "--client-ca", str(certs.ca)) as server:
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.base + "/decisions", verify=trust)  # no client certificate: no TLS session
        client = ssl.create_default_context(cafile=str(certs.ca))
        client.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        assert httpx.get(server.base + "/decisions", verify=client).status_code == 200
