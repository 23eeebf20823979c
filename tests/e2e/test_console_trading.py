"""The console's orders-and-book page in Debian's chromium against the real system: the
live ladder, an order sent with `qsuite ctl` showing up in the blotter, the ticket
refusing a logged-in viewer in words and sending a logged-in operator's order, and a
restarted console that starts complete (and still knows who is logged in)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from console_login import log_in
from harness import Sandbox, clean_env, running, wait_until
from playwright.sync_api import Page, expect

from app.client import QSuiteClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def ctl(sandbox: Sandbox, *args: str) -> Any:
    out = subprocess.run(
        sandbox.command("ctl", *args, "--json"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert out.returncode == 0, f"ctl {' '.join(args)}: {out.stderr}"
    return json.loads(out.stdout)


def pid_of(client: QSuiteClient, process: str) -> int:
    state = {p.process: p for p in client.health().processes}[process]
    return int(state.pid or 0) if state.state == "up" else 0


def logged_on(client: QSuiteClient) -> bool:
    execution = {p.process: p for p in client.health().processes}["execution"]
    return execution.state == "up" and "not connected" not in execution.detail


def test_trading_page_when_system_runs_then_ladder_fills_and_a_cli_order_reaches_the_blotter(
    sandbox: Sandbox,
    console_users: dict[str, tuple[str, str]],
    page: Page,
    screenshot: Callable[[str], Path],
) -> None:
    base = f"http://{sandbox.settings.ui.host}:{sandbox.settings.ui.port}"
    url = f"{base}/trading"
    with running(sandbox, "run"), QSuiteClient(sandbox.settings) as client:
        wait_until(
            lambda: urllib.request.urlopen(url, timeout=2).status == 200, 60, "console up", 0.2
        )
        log_in(page, url, "vic")
        expect(page.get_by_test_id("book-state")).to_contain_text("LIVE", timeout=30_000)
        for level in ("ask-0", "bid-0", "bid-1"):
            expect(page.get_by_test_id(f"ladder-{level}")).to_be_visible()
        best_bid = Decimal(page.get_by_test_id("ladder-bid-0").locator("td").nth(1).inner_text())

        wait_until(lambda: logged_on(client), 30, "the order manager logged on to the venue")
        far = best_bid - 2  # rests (nobody sells that low in a calm market), inside the collar
        ack = ctl(
            sandbox, "order", "submit", "desk1", "AAA", "buy", "3", "--price", str(far),
            "--id", "e2e-rest",
        )  # fmt: skip
        assert ack["status"] == "pending_new"

        row = page.get_by_test_id("blotter").locator(
            '.ag-center-cols-container [row-id="e2e-rest"]'
        )
        expect(row.locator('[col-id="status"]')).to_have_text("accepted", timeout=15_000)
        expect(row.locator('[col-id="price"]')).to_have_text(f"{far:f}".rstrip("0").rstrip("."))

        # a viewer's order is refused in words, by the console's handler
        message = page.get_by_test_id("ticket-message")
        page.get_by_label("Quantity").fill("1")
        page.get_by_label("Price").fill(str(far))
        page.get_by_test_id("ticket-send").click()
        expect(message).to_contain_text(
            "Not allowed: this needs the operator role; you are vic (viewer)", timeout=15_000
        )
        screenshot("trading-viewer-refused.png")

        # an operator's is sent on their behalf and reaches the blotter
        page.goto(f"{base}/logout")
        log_in(page, url, "olga")
        expect(page.get_by_test_id("book-state")).to_contain_text("LIVE", timeout=30_000)
        page.get_by_label("Quantity").fill("1")
        page.get_by_label("Price").fill(str(far))
        page.get_by_test_id("ticket-send").click()
        expect(message).to_contain_text("(pending_new)", timeout=15_000)
        expect(message).to_have_text(re.compile(r"^Sent man-\S+ \(pending_new\)$"))
        ticket_id = message.inner_text().split()[1]
        mine = page.get_by_test_id("blotter").locator(
            f'.ag-center-cols-container [row-id="{ticket_id}"]'
        )
        expect(mine.locator('[col-id="status"]')).to_have_text("accepted", timeout=15_000)

        best_ask = Decimal(page.get_by_test_id("ladder-ask-0").locator("td").nth(1).inner_text())
        ctl(
            sandbox, "order", "submit", "desk1", "AAA", "buy", "2", "--price", str(best_ask + 1),
            "--id", "e2e-take",
        )  # fmt: skip
        taken = page.get_by_test_id("blotter").locator(
            '.ag-center-cols-container [row-id="e2e-take"]'
        )
        expect(taken.locator('[col-id="status"]')).to_have_text("filled", timeout=15_000)
        expect(page.get_by_test_id("fills")).to_contain_text("e2e-take", timeout=5_000)
        expect(page.get_by_test_id("trades")).to_contain_text("buy", timeout=5_000)
        position = page.get_by_test_id("positions").locator("tbody tr", has_text="desk1")
        expect(position).to_contain_text("AAA", timeout=5_000)
        expect(position.locator("td").nth(2)).to_have_text("2")
        screenshot("trading-ladder-blotter.png")

        # a console started late (here: killed and restarted by the supervisor) starts
        # complete: orders from ListOrders, positions from GetPositions, the book from
        # GetBook or the next snapshot
        old = pid_of(client, "ui")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: pid_of(client, "ui") not in (0, old), 30, "the console restarted")
        wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 30, "up", 0.2)
        page.goto(url)
        expect(row.locator('[col-id="status"]')).to_have_text("accepted", timeout=15_000)
        expect(page.get_by_test_id("book-state")).to_contain_text("LIVE", timeout=15_000)
        expect(position.locator("td").nth(2)).to_have_text("2", timeout=5_000)  # GetPositions
        screenshot("trading-after-console-restart.png")
