#!/usr/bin/env python3
"""Take the README's screenshot of the auditor UI's overview (docs/ui-overview.png) with Debian's chromium.

The log it shows: two weeks of synthetic admission decisions (bench/decisions.py's
generator) and then real `trustgate check` runs (tests/support/ui_log.py), served
by `trustgate ui` on 127.0.0.1 and opened in headless chromium through Playwright.

    .venv/bin/python scripts/ui-screenshot.py [OUTPUT.png]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from decisions import admission_record  # noqa: E402
from support.ui_log import build_log, serve_ui  # noqa: E402

from trustgate.decisions.canonical import timestamp  # noqa: E402
from trustgate.decisions.log import DecisionLog  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    from playwright.sync_api import sync_playwright

    output = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "ui-overview.png"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "log"
        root.mkdir()
        now = dt.datetime.now(dt.UTC)
        with DecisionLog.open(f"sqlite:///{root / 'decisions.db'}") as log:
            n = 0
            for day in range(14, 0, -1):
                for i in range(20 + (day * 7) % 23):
                    moment = now - dt.timedelta(days=day, minutes=i * 17)
                    log.append(admission_record(n, time_text=timestamp(moment)))
                    n += 1
        built = build_log(root)
        with serve_ui(built.url) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.base + "/overview")
            page.screenshot(path=str(output), full_page=True)
            browser.close()
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
