"""The auditor UI in a real browser: Debian's chromium driven by Playwright against `trustgate ui`.

No browser is downloaded: Playwright drives /usr/bin/chromium (scripts/install-system-deps.sh).
Under CI=true a missing chromium fails the tests (`support.components.missing`).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.components import missing
from support.ui_log import TOKEN, Log, Server, build_log, run, serve_ui

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing("chromium", "sh scripts/install-system-deps.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("ui-browser-log"))


@pytest.fixture(scope="module")
def server(log: Log, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tokens = tmp_path_factory.mktemp("ui-browser-tokens") / "tokens"
    tokens.write_text(TOKEN + "\n")
    with serve_ui(log.url, "--token-file", str(tokens)) as running:
        yield running


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A browser signed in as an auditor does: the token typed into /login, kept in an HttpOnly cookie."""
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(server.base + "/decisions")
        page.fill("#token", TOKEN)
        page.click("#sign-in")
        page.wait_for_url("**/overview")
        yield page
    finally:
        context.close()


def test_filter_open_prove_and_export_a_filtered_set(
    page: Any, server: Server, log: Log, tmp_path: Path
) -> None:
    page.goto(server.base + "/decisions")
    assert page.locator("tr.row").count() == 5
    page.select_option("select[name=verdict]", "deny")
    page.fill("input[name=namespace]", "shop")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/decisions?*")
    assert "verdict=deny" in page.url and "namespace=shop" in page.url  # a URL to share
    rows = page.locator("tr.row")
    assert rows.count() == 1 and log.ids["bad2"] in rows.first.inner_html()

    rows.first.locator("a.open").click()
    page.wait_for_url(f"**/decisions/{log.ids['bad2']}")
    assert page.locator("#verdict").inner_text() == "deny"
    assert "no privileged pods" in page.locator("#findings").inner_text()

    with page.expect_download() as download:
        page.click("#prove")
    proof = tmp_path / "proof.json"
    download.value.save_as(proof)
    assert json.loads(proof.read_text())["record"]["id"] == log.ids["bad2"]
    code, out, _ = run("log", "verify-proof", str(proof), "--verifier-key", log.vkey)
    assert code == 0 and out.startswith("proven:")

    page.go_back()
    page.wait_for_url("**/decisions?*")
    with page.expect_download() as download:
        page.click("#export")
    archive = tmp_path / "evidence.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "evidence")
    proofs = sorted((tmp_path / "evidence" / "proofs").iterdir())
    assert [p.stem for p in proofs] == [log.ids["bad2"]]
    for each in proofs:
        code, out, _ = run("log", "verify-proof", str(each), "--verifier-key", log.vkey)
        assert code == 0 and out.startswith("proven:"), out


def test_verify_button_shows_progress_then_the_result(page: Any, server: Server) -> None:
    page.goto(server.base + "/integrity")
    page.click("#verify")
    page.wait_for_url("**/integrity/verify/*")
    page.wait_for_selector("#state.intact", timeout=30_000)  # the page refreshes itself while it runs


def test_sign_out_forgets_the_token(page: Any, server: Server) -> None:
    page.click("#sign-out")
    page.wait_for_url("**/login")
    response = page.goto(server.base + "/decisions")
    assert response is not None and response.status == 401


def test_a_request_without_a_token_is_refused(browser: Any, server: Server) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(server.base + "/decisions")
        assert response is not None and response.status == 401
        assert "needs an access token" in page.locator("#reason").inner_text()
        assert page.locator("table").count() == 0  # no decision shown
        page.fill("#token", "not-the-token-but-long-enough")
        page.click("#sign-in")
        assert "not accepted" in page.locator("#reason").inner_text()
        response = page.goto(server.base + "/decisions?verdict=deny")
        assert response is not None and response.status == 401
    finally:
        context.close()


def test_overview_screenshot(page: Any, server: Server, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.base + "/overview")
    assert (
        page.locator("svg.chart").count() == 4 and "legacy-root" in page.locator("#exceptions").inner_text()
    )
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
