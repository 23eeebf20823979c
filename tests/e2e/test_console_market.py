"""The console's market page in Debian's chromium: live prices, flagged as simulated."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from console_login import log_in
from harness import Sandbox, running, wait_until
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_market_page_when_synthetic_market_runs_then_prices_move_and_are_flagged(
    sandbox: Sandbox,
    console_users: dict[str, tuple[str, str]],
    page: Page,
    screenshot: Callable[[str], Path],
) -> None:
    url = f"http://{sandbox.settings.ui.host}:{sandbox.settings.ui.port}/market"
    with running(sandbox, "run"):
        wait_until(
            lambda: urllib.request.urlopen(url, timeout=2).status == 200, 60, "console up", 0.2
        )
        log_in(page, url, "vic")
        expect(page.get_by_test_id("feed-mode")).to_have_text("SIMULATED", timeout=30_000)
        for symbol in ("AAA", "BBB.L"):
            expect(page.get_by_test_id(f"source-{symbol}")).to_have_text(
                "SIMULATED", timeout=30_000
            )
        row = page.get_by_test_id("watchlist").locator("tr", has_text="AAA")
        first = row.inner_text()
        page.wait_for_function(
            "(first) => { const r = [...document.querySelectorAll('[data-testid=watchlist] tr')]"
            ".find(t => t.innerText.includes('AAA')); return r && r.innerText !== first; }",
            arg=first,
            timeout=20_000,
        )
        screenshot("market-simulated.png")
